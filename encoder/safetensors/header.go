package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// maxHeaderLen bounds the JSON header. Real headers are a few hundred bytes
// per tensor, so 100 MiB leaves room for any model while keeping a lying
// length prefix from driving a huge allocation.
const maxHeaderLen = 100 << 20

// metadataKey is the reserved header key holding the string→string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a checkpoint.
type TensorInfo struct {
	// Name is the tensor's name in the header, e.g. "embeddings.LayerNorm.weight".
	Name string
	// DType is the element type stored in the file.
	DType DType
	// Shape holds the dimensions, outermost first; a scalar has an empty shape.
	Shape []int
	// File is the path of the file holding the tensor's bytes.
	File string
}

// Elements returns the number of elements of the tensor: the product of its
// shape, 1 for a scalar.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Bytes returns the size of the tensor's data in bytes.
func (t TensorInfo) Bytes() int64 { return t.Elements() * int64(t.DType.Size()) }

// tensor is a validated header entry: its description and its byte range
// within the data section of its file.
type tensor struct {
	info       TensorInfo
	begin, end int64 // within the data section
	base       int64 // offset of the data section in the file
	src        *source
	shard      string // path relative to the index, for sharded checkpoints
}

// parsed is the validated content of one safetensors file.
type parsed struct {
	tensors []*tensor
	meta    map[string]string
	body    []byte
}

// parse validates the safetensors file held in data and describes its
// tensors. Name is the file's path, used in errors only. The returned
// tensors slice data; parse itself allocates in proportion to the header,
// never to sizes the header claims.
func parse(name string, data []byte) (*parsed, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%s: file is %d bytes, shorter than the 8-byte header length: %w", name, len(data), ErrHeader)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeaderLen {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d-byte limit: %w", name, n, maxHeaderLen, ErrHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d bytes after the length prefix: %w", name, n, len(data)-8, ErrHeader)
	}
	hdr := data[8 : 8+n]
	body := data[8+n:]
	// The reference implementation requires UTF-8 and a leading '{';
	// encoding/json would silently replace invalid bytes inside strings.
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("%s: header is not valid UTF-8: %w", name, ErrHeader)
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("%s: header does not start with '{': %w", name, ErrHeader)
	}
	p := &parsed{body: body}
	err := eachMember(hdr, func(key string, val json.RawMessage) error {
		if key == metadataKey {
			m, err := parseMetadata(val)
			if err != nil {
				return fmt.Errorf("%s: %s: %w: %w", name, metadataKey, err, ErrHeader)
			}
			p.meta = m
			return nil
		}
		t, err := parseTensor(key, val, int64(len(body)))
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w: %w", name, key, err, ErrHeader)
		}
		t.info.File = name
		t.base = int64(8 + n)
		p.tensors = append(p.tensors, t)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrHeader) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrHeader)
	}
	if err := checkTiling(name, p.tensors, int64(len(body))); err != nil {
		return nil, err
	}
	return p, nil
}

// checkTiling requires the tensors to cover the data section exactly, in
// offset order, without overlaps or gaps, as the reference implementation
// does: an overlap would alias two tensors and a gap or tail would hide bytes
// no tensor accounts for.
func checkTiling(name string, ts []*tensor, bodyLen int64) error {
	order := slices.Clone(ts)
	slices.SortFunc(order, func(a, b *tensor) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var prev *tensor
	var at int64
	for _, t := range order {
		switch {
		case t.begin < at:
			return fmt.Errorf("%s: tensor %q: data_offsets [%d, %d] overlap tensor %q ending at %d: %w", name, t.info.Name, t.begin, t.end, prev.info.Name, at, ErrHeader)
		case t.begin > at:
			return fmt.Errorf("%s: tensor %q: data_offsets [%d, %d] leave a gap of %d bytes after offset %d: %w", name, t.info.Name, t.begin, t.end, t.begin-at, at, ErrHeader)
		}
		at, prev = t.end, t
	}
	if at != bodyLen {
		return fmt.Errorf("%s: tensors cover %d bytes of a %d-byte data section: %w", name, at, bodyLen, ErrHeader)
	}
	return nil
}

// parseTensor validates one tensor entry against a data section of bodyLen
// bytes.
func parseTensor(name string, raw json.RawMessage, bodyLen int64) (*tensor, error) {
	var (
		dtype            string
		shape, offs      []uint64
		hasD, hasS, hasO bool
	)
	err := eachMember(raw, func(key string, val json.RawMessage) error {
		switch key {
		case "dtype":
			return decodeField(key, val, decodeString, &dtype, &hasD)
		case "shape":
			return decodeField(key, val, decodeUints, &shape, &hasS)
		case "data_offsets":
			return decodeField(key, val, decodeUints, &offs, &hasO)
		default:
			return fmt.Errorf("unknown field %q", key)
		}
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !hasD:
		return nil, fmt.Errorf("missing dtype")
	case !hasS:
		return nil, fmt.Errorf("missing shape")
	case !hasO:
		return nil, fmt.Errorf("missing data_offsets")
	}
	dt := DType(dtype)
	if !dt.Known() {
		return nil, fmt.Errorf("unknown dtype %q: %w", dtype, ErrDType)
	}
	if len(offs) != 2 {
		return nil, fmt.Errorf("data_offsets has %d values, want 2", len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin > end {
		return nil, fmt.Errorf("data_offsets [%d, %d] end before they begin", begin, end)
	}
	if end > uint64(bodyLen) {
		return nil, fmt.Errorf("data_offsets [%d, %d] run past the %d-byte data section", begin, end, bodyLen)
	}
	// Every intermediate product is checked, so neither the element count
	// nor any single dimension can overflow an int further down.
	elems := uint64(1)
	dims := make([]int, len(shape))
	for i, d := range shape {
		if d > math.MaxInt {
			return nil, fmt.Errorf("shape %v: dimension %d overflows", shape, d)
		}
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64 {
			return nil, fmt.Errorf("shape %v: element count overflows", shape)
		}
		elems = lo
		dims[i] = int(d)
	}
	hi, size := bits.Mul64(elems, uint64(dt.Size()))
	if hi != 0 || size != end-begin {
		return nil, fmt.Errorf("shape %v of %s needs %d×%d bytes but data_offsets [%d, %d] hold %d", shape, dt, elems, dt.Size(), begin, end, end-begin)
	}
	return &tensor{
		info:  TensorInfo{Name: name, DType: dt, Shape: dims},
		begin: int64(begin),
		end:   int64(end),
	}, nil
}

// decodeField decodes the value val of a tensor entry's field key with dec
// into dst and records in seen that the field is present; an error names the
// field.
func decodeField[T any](key string, val json.RawMessage, dec func(json.RawMessage) (T, error), dst *T, seen *bool) error {
	v, err := dec(val)
	if err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	*dst, *seen = v, true
	return nil
}

// parseMetadata decodes the "__metadata__" value, which must be an object of
// strings only.
func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	m := map[string]string{}
	err := eachMember(raw, func(key string, val json.RawMessage) error {
		s, err := decodeString(val)
		if err != nil {
			return fmt.Errorf("key %q: %v", key, err)
		}
		m[key] = s
		return nil
	})
	return m, err
}

// decodeString decodes a JSON string, refusing null and every other kind of
// value that json.Unmarshal would quietly accept or coerce.
func decodeString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("value %s is not a string", abbrev(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// decodeUints decodes a JSON array of non-negative integers, refusing null,
// fractions, exponents and negative numbers.
func decodeUints(raw json.RawMessage) ([]uint64, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("value %s is not an array", abbrev(raw))
	}
	var u []uint64
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("value %s is not an array of non-negative integers", abbrev(raw))
	}
	return u, nil
}

// eachMember calls fn for every member of the JSON object raw, in order. It
// rejects anything but a single object (trailing whitespace aside) and
// duplicate keys, which encoding/json would otherwise resolve silently by
// keeping the last one.
func eachMember(raw []byte, fn func(key string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("value %s is not a JSON object", abbrev(raw))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("invalid JSON: object key %v is not a string", tok)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fmt.Errorf("key %q: invalid JSON: %v", key, err)
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON: data after the object")
	}
	return nil
}

// abbrev shortens raw JSON for error messages, so a hostile header cannot
// make an error message arbitrarily long.
func abbrev(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}
