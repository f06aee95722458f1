package safetensors

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

func TestShardedShared(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert-f16-max-sharded")
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, IndexFileName)} {
		c, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(maps.Keys(idx.WeightMap))
		if got := c.Names(); !slices.Equal(got, want) {
			t.Errorf("Open(%s): names %v, want the index's %v", path, got, want)
		}
		for name, shard := range idx.WeightMap {
			info, _ := c.Info(name)
			if info.File != filepath.Join(dir, shard) {
				t.Errorf("%s: file %s, index says %s", name, info.File, shard)
			}
		}
		// Layer 1 straddles both shards, so a model loader reading it
		// exercises both mappings.
		if _, err := c.Float32("encoder.layer.1.attention.output.dense.weight", 40, 40); err != nil {
			t.Error(err)
		}
		c.Close()
		if got := c.Files(); len(got) != 2 || got[0] != filepath.Join(dir, "model-00001-of-00002.safetensors") {
			t.Errorf("Files after Close = %v, want both shards", got)
		}
	}
}

// shardDir writes a sharded model directory: shards maps file name to file
// bytes, and index is the literal index JSON.
func shardDir(t *testing.T, index string, shards map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range shards {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestShardedCorrupt(t *testing.T) {
	a := build(nil, entry{"a", F32, []int{1}, f32Bytes(1)})
	b := build(nil, entry{"b", F32, []int{1}, f32Bytes(2)})
	ab := build(nil, entry{"a", F32, []int{1}, f32Bytes(1)}, entry{"b", F32, []int{1}, f32Bytes(2)})
	two := map[string][]byte{"s1.safetensors": a, "s2.safetensors": b}
	cases := []struct {
		name   string
		index  string
		shards map[string][]byte
		want   string
	}{
		{"not JSON", `{"weight_map":`, two, "invalid JSON"},
		{"no weight_map", `{"metadata":{"total_size":8}}`, two, "no weight_map"},
		{"empty weight_map", `{"weight_map":{}}`, two, "empty weight_map"},
		{"non-string file", `{"weight_map":{"a":1}}`, two, `tensor "a": value 1 is not a string`},
		{"duplicate tensor key", `{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}`, two, `duplicate key "a"`},
		{"parent escape", `{"weight_map":{"a":"../s1.safetensors"}}`, two, "escapes the model directory"},
		{"nested escape", `{"weight_map":{"a":"x/../../s1.safetensors"}}`, two, "escapes the model directory"},
		{"absolute path", `{"weight_map":{"a":"/etc/passwd"}}`, two, "escapes the model directory"},
		{"backslash", `{"weight_map":{"a":"..\\s1.safetensors"}}`, two, "backslash"},
		{"empty file name", `{"weight_map":{"a":""}}`, two, "empty shard file name"},
		{"index as shard", `{"weight_map":{"a":"model.safetensors.index.json"}}`, two, "names the index itself"},
		{"missing shard", `{"weight_map":{"a":"s1.safetensors","b":"s3.safetensors"}}`, two, "s3.safetensors"},
		{"wrong shard", `{"weight_map":{"a":"s2.safetensors","b":"s1.safetensors"}}`, two, "but the weight_map says"},
		{"tensor in two shards", `{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}`, map[string][]byte{"s1.safetensors": ab, "s2.safetensors": ab}, "is in both"},
		{"shard tensor not indexed", `{"weight_map":{"a":"s1.safetensors"}}`, map[string][]byte{"s1.safetensors": ab}, `tensor "b" of`},
		{"indexed tensor absent", `{"weight_map":{"a":"s1.safetensors","c":"s1.safetensors"}}`, two, `tensor "c": the weight_map says`},
		{"corrupt shard", `{"weight_map":{"a":"s1.safetensors"}}`, map[string][]byte{"s1.safetensors": a[:len(a)-1]}, "data section"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shardDir(t, tc.index, tc.shards)
			c, err := Open(dir)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded on a corrupt sharded checkpoint")
			}
			if !errors.Is(err, ErrIndex) && !errors.Is(err, ErrHeader) {
				t.Errorf("error %v wraps neither ErrIndex nor ErrHeader", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory's files", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		dir := shardDir(t, `{"metadata":{"total_size":8},"weight_map":{"a":"s1.safetensors","b":"./s2.safetensors"}}`, two)
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.Names(); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("names %v", got)
		}
		if v, err := c.Float32("b", 1); err != nil || v[0] != 2 {
			t.Errorf("Float32(b) = %v, %v", v, err)
		}
	})
}

func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), dir) {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "absent.safetensors")); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("absent file: %v", err)
	}
	data := build(nil, entry{"x", F32, []int{1}, f32Bytes(3)})
	if err := os.WriteFile(filepath.Join(dir, SingleFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, SingleFileName)} {
		c, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := c.Lookup("bert.x", "x"); !ok || name != "x" {
			t.Errorf("Lookup = %q, %v", name, ok)
		}
		if _, ok := c.Lookup("bert.x", "y"); ok {
			t.Error("Lookup found a tensor that does not exist")
		}
		if c.Path() != filepath.Join(dir, SingleFileName) {
			t.Errorf("Path = %s", c.Path())
		}
		c.Close()
	}
	// An empty file fails cleanly on the reading path, not in mmap.
	empty := writeFile(t, "empty.safetensors", nil)
	if _, err := Open(empty); !errors.Is(err, ErrHeader) {
		t.Errorf("empty file: %v", err)
	}
}
