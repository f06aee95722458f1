package safetensors

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestOpenValidSynthetic(t *testing.T) {
	data := build(map[string]string{"format": "pt"},
		entry{"a", F32, []int{2, 2}, f32Bytes(1, 2, 3, 4)},
		entry{"empty", F32, []int{0, 3}, nil},
		entry{"scalar", F32, nil, f32Bytes(7)},
		entry{"ids", I64, []int{2}, make([]byte, 16)},
	)
	// The reference writer pads the header with spaces to 8-byte alignment.
	padded := rawFile(string(data[8:len(data)-4*5-16])+"   ", data[len(data)-4*5-16:])
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", data}, {"padded", padded}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(writeFile(t, "m.safetensors", tc.data))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := strings.Join(c.Names(), ","); got != "a,empty,ids,scalar" {
				t.Errorf("Names = %s", got)
			}
			if c.Metadata()["format"] != "pt" {
				t.Errorf("Metadata = %v", c.Metadata())
			}
			if got := c.NumParams(); got != 4+0+1+2 {
				t.Errorf("NumParams = %d, want 7", got)
			}
			if d := c.DTypes(); d[F32] != 3 || d[I64] != 1 || len(d) != 2 {
				t.Errorf("DTypes = %v", d)
			}
			v, err := c.Float32("a", 2, 2)
			if err != nil || len(v) != 4 || v[0] != 1 || v[3] != 4 {
				t.Errorf("Float32(a) = %v, %v", v, err)
			}
			v, err = c.Float32("scalar")
			if err != nil || len(v) != 1 || v[0] != 7 {
				t.Errorf("Float32(scalar) = %v, %v", v, err)
			}
			v, err = c.Float32("empty", 0, 3)
			if err != nil || len(v) != 0 {
				t.Errorf("Float32(empty) = %v, %v", v, err)
			}
			info, ok := c.Info("ids")
			if !ok || info.DType != I64 || len(info.Shape) != 1 || info.Shape[0] != 2 || info.Bytes() != 16 {
				t.Errorf("Info(ids) = %+v, %v", info, ok)
			}
		})
	}
}

func TestOpenCorruptHeaders(t *testing.T) {
	f4 := f32Bytes(1, 2, 3, 4)
	big := binary.LittleEndian.AppendUint64(nil, 1<<40)
	big = append(big, `{}`...)
	justOver := binary.LittleEndian.AppendUint64(nil, 100)
	justOver = append(justOver, `{"__metadata__":{}}`...)
	cases := []struct {
		name   string
		data   []byte
		tensor string // the tensor the message must name, if any
		want   string // a fragment the message must hold
	}{
		{"short file", []byte{1, 2, 3}, "", "shorter than the 8-byte"},
		{"length over limit", big, "", "exceeds the 104857600-byte limit"},
		{"length over file", justOver, "", "exceeds the 19 bytes"},
		{"empty header", rawFile("", nil), "", "does not start with '{'"},
		{"array header", rawFile(`[]`, nil), "", "does not start with '{'"},
		{"truncated JSON", rawFile(`{"a":{"dtype":"F32"`, nil), "", "invalid JSON"},
		{"trailing data", rawFile(`{} {}`, nil), "", "data after the object"},
		{"trailing NUL", rawFile("{}\x00", nil), "", "invalid JSON"},
		{"invalid UTF-8", rawFile("{\"a\xff\":1}", nil), "", "UTF-8"},
		{"metadata number", rawFile(`{"__metadata__":{"k":1}}`, nil), "", `key "k": value 1 is not a string`},
		{"metadata null value", rawFile(`{"__metadata__":{"k":null}}`, nil), "", "is not a string"},
		{"metadata not object", rawFile(`{"__metadata__":"pt"}`, nil), "", "not a JSON object"},
		{"metadata duplicate key", rawFile(`{"__metadata__":{"k":"a","k":"b"}}`, nil), "", `duplicate key "k"`},
		{"tensor not object", rawFile(`{"a":[1]}`, nil), "a", "not a JSON object"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}`, f4[:4]), "a", `unknown dtype "Q7"`},
		{"dtype not string", rawFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, f4[:4]), "a", "dtype: value 4 is not a string"},
		{"missing dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, f4[:4]), "a", "missing dtype"},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f4[:4]), "a", "missing shape"},
		{"missing offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, f4[:4]), "a", "missing data_offsets"},
		{"unknown field", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f4[:4]), "a", `unknown field "x"`},
		{"duplicate field", rawFile(`{"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}}`, f4[:4]), "a", `duplicate key "shape"`},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f4[:4]), "a", "non-negative integers"},
		{"fractional dim", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, f4[:4]), "a", "non-negative integers"},
		{"exponent dim", rawFile(`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, f4[:4]), "a", "non-negative integers"},
		{"null shape", rawFile(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, f4[:4]), "a", "not an array"},
		{"dim too large", rawFile(`{"a":{"dtype":"F32","shape":[18446744073709551615,0],"data_offsets":[0,0]}}`, nil), "a", "overflows"},
		{"element overflow", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}`, f4[:4]), "a", "element count overflows"},
		{"byte overflow", rawFile(`{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}`, f4[:4]), "a", "needs 4611686018427387904×4 bytes"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f4[:4]), "a", "has 3 values"},
		{"offsets reversed", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, f4[:4]), "a", "end before they begin"},
		{"offsets past data", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, f4[:4]), "a", "run past the 4-byte data section"},
		{"huge offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}`, f4[:4]), "a", "run past"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f4[:8]), "a", "needs 3×4 bytes but data_offsets [0, 8] hold 8"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f4[:12]), "b", `overlap tensor "a"`},
		{"alias", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f4[:8]), "", "overlap tensor"},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f4[:12]), "b", "gap of 4 bytes"},
		{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f4[:8]), "", "cover 4 bytes of a 8-byte data section"},
		{"duplicate tensor", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f4[:8]), "", `duplicate key "a"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.safetensors", tc.data)
			c, err := Open(path)
			if err == nil {
				c.Close()
				t.Fatalf("Open succeeded on a corrupt file")
			}
			if !errors.Is(err, ErrHeader) {
				t.Errorf("error %v does not wrap ErrHeader", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if tc.tensor != "" && !strings.Contains(msg, `tensor "`+tc.tensor+`"`) {
				t.Errorf("error %q does not name tensor %q", msg, tc.tensor)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q lacks %q", msg, tc.want)
			}
		})
	}
}

func TestUnknownDTypeWrapsErrDType(t *testing.T) {
	_, err := Open(writeFile(t, "m.safetensors", rawFile(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{0})))
	if !errors.Is(err, ErrDType) || !errors.Is(err, ErrHeader) {
		t.Fatalf("error %v should wrap ErrDType and ErrHeader", err)
	}
}
