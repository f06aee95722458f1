package refs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Variant makes a copy of model directory src in a temporary directory
// (files symlinked, so it is cheap) with edits applied: each key is a path
// relative to the directory, its value the new content, or "-" to delete.
func Variant(tb testing.TB, src string, edits map[string]string) string {
	tb.Helper()
	dst := tb.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if _, edited := edits[filepath.ToSlash(rel)]; edited {
			return nil
		}
		abs, _ := filepath.Abs(p)
		return os.Symlink(abs, filepath.Join(dst, rel))
	})
	if err != nil {
		tb.Fatal(err)
	}
	for rel, content := range edits {
		if content == "-" {
			continue
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// ExcludedPromptVariant returns a Variant of src whose Pooling module is
// mean pooling with include_prompt false and which defines the prompt
// "query" ("query: "), the layout of models such as INSTRUCTOR that keep
// the instruction out of the pooled vector.
func ExcludedPromptVariant(tb testing.TB, src string) string {
	tb.Helper()
	return Variant(tb, src, map[string]string{
		"1_Pooling/config.json":             `{"pooling_mode": "mean", "include_prompt": false}`,
		"config_sentence_transformers.json": `{"prompts": {"query": "query: "}}`,
	})
}
