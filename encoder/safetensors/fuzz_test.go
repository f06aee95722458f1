package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// realSeeds re-encodes small tensors of the shared models, real bytes and
// real names and metadata, into files small enough for the fuzzer to mutate
// quickly. It returns nothing when the shared material is absent.
func realSeeds(tb testing.TB) [][]byte {
	dir := refs.SharedDir()
	if dir == "" {
		return nil
	}
	var seeds [][]byte
	for _, model := range []string{"tiny-bert", "tiny-bert-bf16-cls", "tiny-bert-f16-max-sharded", "tiny-qwen3"} {
		c, err := Open(filepath.Join(dir, "models", model))
		if err != nil {
			tb.Fatal(err)
		}
		var es []entry
		for _, name := range c.Names() {
			info, _ := c.Info(name)
			if info.Bytes() > 512 || len(es) == 4 {
				continue
			}
			raw, err := c.Raw(name)
			if err != nil {
				tb.Fatal(err)
			}
			es = append(es, entry{name, info.DType, info.Shape, append([]byte(nil), raw...)})
		}
		seeds = append(seeds, build(c.Metadata(), es...))
		c.Close()
	}
	return seeds
}

// FuzzOpen opens mutated checkpoints and requires either an error wrapping
// ErrHeader or a checkpoint whose every tensor converts without a panic and
// within the file's size. It feeds the bytes to the same validation Open
// runs after mapping a file, skipping the file system so that the fuzzer
// runs thousands of inputs a second; the mapped path has its own tests.
func FuzzOpen(f *testing.F) {
	for _, s := range realSeeds(f) {
		f.Add(s)
	}
	f.Add(build(map[string]string{"format": "pt"},
		entry{"a", F16, []int{2}, u16Bytes(0x3c00, 0x7e00)},
		entry{"b", BF16, []int{1, 1}, u16Bytes(0x3f80)},
		entry{"c", I64, []int{1}, make([]byte, 8)},
		entry{"d", F32, []int{0}, nil},
	))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1, 2)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f32Bytes(1, 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := fromSource(&source{path: "fuzz.safetensors", data: data})
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("error %v does not wrap ErrHeader", err)
			}
			return
		}
		defer c.Close()
		var total int64
		for _, name := range c.Names() {
			info, ok := c.Info(name)
			if !ok {
				t.Fatalf("Names lists %q but Info does not know it", name)
			}
			raw, err := c.Raw(name)
			if err != nil || int64(len(raw)) != info.Bytes() {
				t.Fatalf("%s: Raw gave %d bytes (%v), Info says %d", name, len(raw), err, info.Bytes())
			}
			total += info.Bytes()
			v, err := c.Float32(name)
			if info.DType.Float() {
				if err != nil || int64(len(v)) != info.Elements() {
					t.Fatalf("%s: Float32 gave %d values (%v), want %d", name, len(v), err, info.Elements())
				}
			} else if !errors.Is(err, ErrDType) {
				t.Fatalf("%s: Float32 of %s: %v, want ErrDType", name, info.DType, err)
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("tensors claim %d bytes of a %d-byte file", total, len(data))
		}
		_ = c.NumParams()
		_ = c.DTypes()
		_ = c.Metadata()
	})
}

// FuzzIndex parses mutated shard indexes and requires an error wrapping
// ErrIndex or a weight_map of local, non-empty shard paths.
func FuzzIndex(f *testing.F) {
	if dir := refs.SharedDir(); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, "models", "tiny-bert-f16-max-sharded", IndexFileName))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"metadata":{"total_size":8},"weight_map":{"a":"s1.safetensors","b":"./x/s2.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../s1.safetensors"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := parseIndex("index.json", data)
		if err != nil {
			if !errors.Is(err, ErrIndex) {
				t.Fatalf("error %v does not wrap ErrIndex", err)
			}
			return
		}
		if len(idx.weightMap) == 0 {
			t.Fatal("empty weight_map accepted")
		}
		for name, p := range idx.weightMap {
			if p == "" || !filepath.IsLocal(p) {
				t.Fatalf("tensor %q: shard path %q escapes the directory", name, p)
			}
		}
	})
}
