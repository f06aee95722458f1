package arch

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// Config is a parsed Hugging Face config.json. Its getters return errors that
// wrap ErrConfig and name the file and key, so architectures can report a bad
// value precisely without repeating that bookkeeping.
type Config struct {
	// Path is the file the config was read from, used in error messages.
	Path string
	raw  map[string]json.RawMessage
}

// ReadConfig reads and parses the config.json at path.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses the JSON text of a config; name is used in errors.
func ParseConfig(name string, data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: %s: not a JSON object", ErrConfig, name)
	}
	return &Config{Path: name, raw: raw}, nil
}

// Has reports whether key is present and not null.
func (c *Config) Has(key string) bool {
	v, ok := c.raw[key]
	return ok && string(v) != "null"
}

// Keys returns the keys of the config in sorted order.
func (c *Config) Keys() []string {
	ks := make([]string, 0, len(c.raw))
	for k := range c.raw {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Raw returns the raw JSON of key, or nil when it is absent.
func (c *Config) Raw(key string) json.RawMessage { return c.raw[key] }

func (c *Config) errf(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %q: %s", ErrConfig, c.Path, key, fmt.Sprintf(format, args...))
}

// Int returns the integer value of key, which must be present and within
// [lo, hi]. Whole-valued floats such as 384.0 are accepted.
func (c *Config) Int(key string, lo, hi int) (int, error) {
	if !c.Has(key) {
		return 0, c.errf(key, "missing")
	}
	var f float64
	if err := json.Unmarshal(c.raw[key], &f); err != nil {
		return 0, c.errf(key, "not a number: %s", c.raw[key])
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, c.errf(key, "%v is not an integer in [%d, %d]", f, lo, hi)
	}
	return int(f), nil
}

// IntOr is Int with a default for an absent or null key.
func (c *Config) IntOr(key string, def, lo, hi int) (int, error) {
	if !c.Has(key) {
		return def, nil
	}
	return c.Int(key, lo, hi)
}

// FloatOr returns the number at key, or def when it is absent or null. The
// value must be finite.
func (c *Config) FloatOr(key string, def float64) (float64, error) {
	if !c.Has(key) {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(c.raw[key], &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, c.errf(key, "not a finite number: %s", c.raw[key])
	}
	return f, nil
}

// PositiveFloatOr is FloatOr for values that must be above zero, such as the
// epsilon of a normalization: a zero or negative one turns every embedding
// into NaN, which must be refused at load rather than written as results.
func (c *Config) PositiveFloatOr(key string, def float64) (float64, error) {
	f, err := c.FloatOr(key, def)
	if err != nil {
		return 0, err
	}
	if !(f > 0) {
		return 0, c.errf(key, "%v must be above 0", f)
	}
	return f, nil
}

// StringOr returns the string at key, or def when it is absent or null.
func (c *Config) StringOr(key, def string) (string, error) {
	if !c.Has(key) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(c.raw[key], &s); err != nil {
		return "", c.errf(key, "not a string: %s", c.raw[key])
	}
	return s, nil
}

// BoolOr returns the boolean at key, or def when it is absent or null.
func (c *Config) BoolOr(key string, def bool) (bool, error) {
	if !c.Has(key) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(c.raw[key], &b); err != nil {
		return false, c.errf(key, "not a boolean: %s", c.raw[key])
	}
	return b, nil
}

// Decode unmarshals the value at key into v; an absent key leaves v as is.
func (c *Config) Decode(key string, v any) error {
	if !c.Has(key) {
		return nil
	}
	if err := json.Unmarshal(c.raw[key], v); err != nil {
		return c.errf(key, "%v", err)
	}
	return nil
}

// ModelType returns the model_type of the config.
func (c *Config) ModelType() (string, error) {
	s, err := c.StringOr("model_type", "")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", c.errf("model_type", "missing")
	}
	return s, nil
}

// Architecture returns the first entry of "architectures" (BertModel,
// XLMRobertaModel…), or "" when the config has none.
func (c *Config) Architecture() string {
	var a []string
	if c.Decode("architectures", &a) != nil || len(a) == 0 {
		return ""
	}
	return a[0]
}
