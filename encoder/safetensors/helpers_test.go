package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// entry is one tensor for build: its dtype, shape and raw little-endian bytes.
type entry struct {
	name  string
	dtype DType
	shape []int
	data  []byte
}

// build encodes a valid safetensors file holding the entries in order, as
// the reference writer lays them out.
func build(meta map[string]string, entries ...entry) []byte {
	hdr := map[string]any{}
	if meta != nil {
		hdr[metadataKey] = meta
	}
	var body []byte
	for _, e := range entries {
		shape := e.shape
		if shape == nil {
			shape = []int{}
		}
		hdr[e.name] = map[string]any{
			"dtype":        string(e.dtype),
			"shape":        shape,
			"data_offsets": []int{len(body), len(body) + len(e.data)},
		}
		body = append(body, e.data...)
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		panic(err)
	}
	return rawFile(string(js), body)
}

// rawFile lays out a file from a literal header and data section, with a
// correct length prefix, so tests can write any header at all.
func rawFile(header string, body []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, body...)
}

// writeFile writes data to name in a fresh temporary directory and returns
// the path.
func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// f32Bytes encodes float32 values little-endian.
func f32Bytes(v ...float32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// u16Bytes encodes 16-bit patterns little-endian.
func u16Bytes(v ...uint16) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint16(out, x)
	}
	return out
}
