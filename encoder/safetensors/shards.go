package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// index is the validated content of a model.safetensors.index.json: tensor
// name → shard path relative to the index's directory, cleaned.
type index struct {
	weightMap map[string]string
}

// parseIndex validates an index file's bytes. Only "weight_map" is
// interpreted; "metadata" (which holds numbers such as total_size) and other
// keys are allowed but ignored, since they do not affect where tensors live.
func parseIndex(name string, data []byte) (*index, error) {
	idx := &index{}
	var haveMap bool
	err := eachMember(data, func(key string, val json.RawMessage) error {
		if key != "weight_map" {
			return nil
		}
		haveMap = true
		idx.weightMap = map[string]string{}
		return eachMember(val, func(tensor string, v json.RawMessage) error {
			file, err := decodeString(v)
			if err != nil {
				return fmt.Errorf("weight_map: tensor %q: %v", tensor, err)
			}
			clean, err := localShardPath(file)
			if err != nil {
				return fmt.Errorf("weight_map: tensor %q: %v", tensor, err)
			}
			idx.weightMap[tensor] = clean
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrIndex)
	}
	if !haveMap {
		return nil, fmt.Errorf("%s: no weight_map: %w", name, ErrIndex)
	}
	if len(idx.weightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map: %w", name, ErrIndex)
	}
	return idx, nil
}

// localShardPath checks that a weight_map file name stays inside the index's
// directory and returns it cleaned, so that "a" and "./a" are one shard. The
// check is lexical on purpose: Hugging Face cache snapshots are symlinks into
// a blobs directory outside the snapshot, and those must keep working.
func localShardPath(file string) (string, error) {
	if file == "" {
		return "", errors.New("empty shard file name")
	}
	if strings.ContainsRune(file, '\\') {
		return "", fmt.Errorf("shard file %q contains a backslash", file)
	}
	p := filepath.FromSlash(file)
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("shard file %q escapes the model directory", file)
	}
	return filepath.Clean(p), nil
}

// openSharded opens the index at indexPath and every shard it names, and
// checks that the shards hold exactly the tensors the index assigns to them.
func openSharded(indexPath string) (_ *Checkpoint, err error) {
	data, err := readBounded(indexPath, maxHeaderLen)
	if err != nil {
		return nil, err
	}
	idx, err := parseIndex(indexPath, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(indexPath)
	c := &Checkpoint{
		tensors: make(map[string]*tensor, len(idx.weightMap)),
		meta:    map[string]string{},
		path:    indexPath,
	}
	defer func() {
		// Release the shards mapped so far; c itself is never returned.
		if err != nil {
			c.Close()
		}
	}()
	shards := slices.Sorted(maps.Keys(invert(idx.weightMap)))
	for _, rel := range shards {
		path := filepath.Join(dir, rel)
		if path == filepath.Clean(indexPath) {
			return nil, fmt.Errorf("%s: weight_map names the index itself as a shard: %w", indexPath, ErrIndex)
		}
		src, err := openSource(path)
		if err != nil {
			return nil, fmt.Errorf("%s: shard %s: %w: %w", indexPath, rel, err, ErrIndex)
		}
		c.sources = append(c.sources, src)
		p, err := parse(path, src.data)
		if err != nil {
			return nil, err
		}
		for k, v := range p.meta {
			if _, ok := c.meta[k]; !ok {
				c.meta[k] = v
			}
		}
		for _, t := range p.tensors {
			t.src = src
			t.shard = rel
			name := t.info.Name
			if prev, ok := c.tensors[name]; ok {
				return nil, fmt.Errorf("%s: tensor %q is in both %s and %s: %w", indexPath, name, prev.info.File, path, ErrIndex)
			}
			c.tensors[name] = t
		}
	}
	// Placement is checked only once every shard is read, so a tensor
	// duplicated across shards is reported as such rather than as misplaced.
	for _, name := range slices.Sorted(maps.Keys(c.tensors)) {
		t := c.tensors[name]
		want, ok := idx.weightMap[name]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q of %s is not in the weight_map: %w", indexPath, name, t.info.File, ErrIndex)
		}
		if want != t.shard {
			return nil, fmt.Errorf("%s: tensor %q is in %s but the weight_map says %s: %w", indexPath, name, t.info.File, want, ErrIndex)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(idx.weightMap)) {
		rel := idx.weightMap[name]
		if _, ok := c.tensors[name]; !ok {
			return nil, fmt.Errorf("%s: tensor %q: the weight_map says %s, which does not hold it: %w: %w", indexPath, name, filepath.Join(dir, rel), ErrIndex, ErrTensorNotFound)
		}
	}
	c.finish()
	return c, nil
}

// invert returns the set of values of m.
func invert(m map[string]string) map[string]bool {
	s := make(map[string]bool)
	for _, v := range m {
		s[v] = true
	}
	return s
}

// readBounded reads a whole file that must not exceed limit bytes, so a huge
// or endless file (a FIFO, /dev/zero) cannot exhaust memory.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrIO)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, err, ErrIO)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", path, limit, ErrIndex)
	}
	return data, nil
}
