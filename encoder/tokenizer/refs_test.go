package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// compareIDs encodes every text and counts the rows whose ids differ from
// want, logging the first few differences.
func compareIDs(t *testing.T, tk *Tokenizer, texts []*string, want [][]int32, maxLen int) (match, total int) {
	t.Helper()
	var buf []int32
	logged := 0
	for i, txt := range texts {
		if txt == nil {
			continue
		}
		total++
		buf, _ = tk.EncodeTo(buf[:0], *txt, maxLen)
		if slices.Equal(buf, want[i]) {
			match++
			continue
		}
		if logged < 8 {
			logged++
			k := 0
			for k < len(buf) && k < len(want[i]) && buf[k] == want[i][k] {
				k++
			}
			lo := max(k-3, 0)
			t.Errorf("row %d %q: first difference at %d: got %v, want %v (%d vs %d ids)", i, clip(*txt, 200), k,
				tail(buf, lo, 8, tk), tail(want[i], lo, 8, tk), len(buf), len(want[i]))
		}
	}
	return match, total
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func tail(ids []int32, lo, n int, tk *Tokenizer) []string {
	var out []string
	for i := lo; i < len(ids) && i < lo+n; i++ {
		out = append(out, tk.IDToToken(ids[i]))
	}
	return out
}

func TestTokenizerRefs(t *testing.T) {
	shared := refs.Shared(t)
	for _, c := range []struct{ file, tok string }{
		{"tokenizer.bert-base-uncased.parquet", filepath.Join(shared, "vocab", "bert-base-uncased.tokenizer.json")},
		{"tokenizer.bert-cased-variant.parquet", filepath.Join(shared, "refs", "tokenizers", "bert-cased-variant.tokenizer.json")},
	} {
		t.Run(c.file, func(t *testing.T) {
			tk, err := FromFile(c.tok)
			if err != nil {
				t.Fatal(err)
			}
			rows := refs.Read[refs.TokenizerRow](t, c.file)
			texts, want := make([]*string, len(rows)), make([][]int32, len(rows))
			for i, r := range rows {
				texts[i], want[i] = r.Text, r.InputIDs
			}
			match, total := compareIDs(t, tk, texts, want, 0)
			t.Logf("%s: %d/%d rows match", c.file, match, total)
		})
	}
}

// maxSeqLength is the truncation length sentence-transformers uses for a
// model directory: sentence_bert_config.json's max_seq_length, else the
// smaller of the tokenizer's model_max_length and the model's
// max_position_embeddings.
func maxSeqLength(t *testing.T, dir string) int {
	t.Helper()
	var sb struct {
		MaxSeqLength int `json:"max_seq_length"`
	}
	var tc struct {
		ModelMaxLength float64 `json:"model_max_length"`
	}
	var mc struct {
		MaxPositionEmbeddings int `json:"max_position_embeddings"`
	}
	for name, v := range map[string]any{"sentence_bert_config.json": &sb, "tokenizer_config.json": &tc, "config.json": &mc} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if sb.MaxSeqLength > 0 {
		return sb.MaxSeqLength
	}
	return int(min(tc.ModelMaxLength, float64(mc.MaxPositionEmbeddings)))
}

func TestModelRefs(t *testing.T) {
	for _, name := range []string{"tiny-bert", "tiny-bert-bf16-cls", "tiny-bert-f16-max-sharded", "tiny-mpnet",
		"tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe", "tiny-xlmr"} {
		t.Run(name, func(t *testing.T) {
			dir := refs.ModelDir(t, name)
			tk, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			maxLen := maxSeqLength(t, dir)
			rows := refs.Read[refs.Row](t, name+".parquet")
			texts, want := make([]*string, len(rows)), make([][]int32, len(rows))
			longest := 0
			for i, r := range rows {
				texts[i], want[i] = r.Text, r.InputIDs
				longest = max(longest, len(r.InputIDs))
			}
			match, total := compareIDs(t, tk, texts, want, maxLen)
			t.Logf("%s (%s, max_seq_length %d, longest ref %d): %d/%d rows match", name, tk.Kind(), maxLen, longest, match, total)
		})
	}
}

// TestVocabTxtFallback checks that the vocab.txt layout of tiny-bert gives
// the same ids as its tokenizer.json on the whole corpus.
func TestVocabTxtFallback(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	dir := t.TempDir()
	for _, name := range []string{"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromVocab, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if fromVocab.Kind() != "WordPiece" || fromVocab.PadID() != fromJSON.PadID() || fromVocab.VocabSize() != fromJSON.VocabSize() {
		t.Fatalf("vocab.txt: kind %s pad %d size %d; tokenizer.json: kind %s pad %d size %d",
			fromVocab.Kind(), fromVocab.PadID(), fromVocab.VocabSize(), fromJSON.Kind(), fromJSON.PadID(), fromJSON.VocabSize())
	}
	rows := refs.Read[refs.Row](t, "tiny-bert.parquet")
	texts, want := make([]*string, len(rows)), make([][]int32, len(rows))
	for i, r := range rows {
		texts[i] = r.Text
		want[i], _ = fromJSON.EncodeTo(nil, deref(r.Text), 0)
	}
	match, total := compareIDs(t, fromVocab, texts, want, 0)
	t.Logf("vocab.txt fallback: %d/%d rows equal to tokenizer.json", match, total)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestOffsetRefs checks EncodeOffsets against Hugging Face's offsets on
// the whole corpus for bert-base-uncased, the reference that has them (in
// characters; EncodeOffsets gives bytes, as the Rust library and TEI do):
// every text token's range, and no range for the special tokens.
func TestOffsetRefs(t *testing.T) {
	shared := refs.Shared(t)
	for _, c := range []struct{ file, tok string }{
		{"tokenizer.bert-base-uncased.parquet", filepath.Join(shared, "vocab", "bert-base-uncased.tokenizer.json")},
	} {
		t.Run(c.file, func(t *testing.T) {
			tk, err := FromFile(c.tok)
			if err != nil {
				t.Fatal(err)
			}
			rows := refs.Read[refs.TokenizerRow](t, c.file)
			bad, total := 0, 0
			for i, r := range rows {
				if r.Text == nil || r.Offsets == "" {
					continue
				}
				var want [][2]int
				if err := json.Unmarshal([]byte(r.Offsets), &want); err != nil {
					t.Fatalf("row %d offsets: %v", i, err)
				}
				// Character offsets to byte offsets.
				byteAt := []int{}
				for b := range *r.Text {
					byteAt = append(byteAt, b)
				}
				byteAt = append(byteAt, len(*r.Text))
				total++
				ids, offs, known := tk.EncodeOffsets(*r.Text, 0)
				ok := offs != nil && slices.Equal(ids, r.InputIDs) && len(want) == len(ids)
				for j := 0; ok && j < len(ids); j++ {
					w := Offset{byteAt[want[j][0]], byteAt[want[j][1]]}
					special := j == 0 || j == len(ids)-1
					ok = known[j] != special && (special || offs[j] == w)
					if !ok && bad < 5 {
						t.Errorf("row %d %q token %d %q: offset %v (known %v), want %v", i, clip(*r.Text, 80), j, tk.IDToToken(ids[j]), offs[j], known[j], w)
					}
				}
				if !ok {
					if offs == nil && bad < 5 {
						t.Errorf("row %d %q: no offsets", i, clip(*r.Text, 80))
					}
					bad++
				}
			}
			if bad > 0 || total == 0 {
				t.Errorf("%d of %d rows differ", bad, total)
			}
			t.Logf("%s: offsets of %d rows equal to Hugging Face's", c.file, total-bad)
		})
	}
}
