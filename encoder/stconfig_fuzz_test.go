package encoder

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadLayout feeds arbitrary bytes as each sentence-transformers file
// in turn: readLayout must return a layout or an error, never panic, and a
// layout it accepts must have a pooling mode.
func FuzzReadLayout(f *testing.F) {
	f.Add(uint8(0), []byte(`[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]`))
	f.Add(uint8(1), []byte(`{"pooling_mode_mean_tokens": true, "word_embedding_dimension": 32}`))
	f.Add(uint8(1), []byte(`{"pooling_mode": ["cls", "lasttoken"], "include_prompt": false}`))
	f.Add(uint8(2), []byte(`{"max_seq_length": 128, "do_lower_case": true}`))
	f.Add(uint8(3), []byte(`{"prompts": {"query": "q: "}, "default_prompt_name": "query"}`))
	files := []string{"modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json"}
	defaults := []string{
		`[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]`,
		`{"pooling_mode": "mean"}`, `{"max_seq_length": 64}`, `{}`,
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "1_Pooling"), 0o755)
		for i, name := range files {
			content := []byte(defaults[i])
			if int(which)%len(files) == i {
				content = data
			}
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := readLayout(dir)
		if err != nil {
			return
		}
		if len(l.pooling.modes) == 0 {
			t.Fatal("accepted a layout without pooling modes")
		}
	})
}
