package embed

import (
	"fmt"
	"strings"
)

// ParseName is the one parser of embedpipe's named option values (Output,
// Precision, the pipeline's OnError): "" gives def, a name among names gives
// itself, anything else an error wrapping ErrOptions that names what, the
// value and the names accepted.
func ParseName[T ~string](what, s string, def T, names ...T) (T, error) {
	if s == "" {
		return def, nil
	}
	for _, n := range names {
		if string(n) == s {
			return n, nil
		}
	}
	want := make([]string, len(names))
	for i, n := range names {
		want[i] = string(n)
	}
	return "", fmt.Errorf("%w: %s %q (want %s)", ErrOptions, what, s, strings.Join(want, ", "))
}

// UnmarshalName is the body of the UnmarshalText methods of the named
// option values: it parses b with parse into *dst.
func UnmarshalName[T ~string](dst *T, b []byte, parse func(string) (T, error)) error {
	v, err := parse(string(b))
	if err == nil {
		*dst = v
	}
	return err
}
