package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// xlmrPipeline is the XLM-R tokenizer composed by hand from the components of
// this file set, so that they are tested without the loader: the normalizer
// sequence, Metaspace, Unigram and the "<s> A </s>" template.
type xlmrPipeline struct {
	norms    []Normalizer
	pre      *metaspace
	model    *unigram
	bos, eos int32
}

// xlmrMaxLen is tiny-xlmr's max_seq_length: sentence_bert_config.json has
// none, so sentence-transformers uses tokenizer_config.json's
// model_max_length.
func xlmrMaxLen(t *testing.T, dir string) int {
	t.Helper()
	var cfg struct {
		ModelMaxLength int `json:"model_max_length"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ModelMaxLength <= 0 {
		t.Fatalf("tokenizer_config.json has no model_max_length")
	}
	return cfg.ModelMaxLength
}

func loadXLMRPipeline(t *testing.T, dir string) *xlmrPipeline {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Normalizer struct {
			Type        string            `json:"type"`
			Normalizers []json.RawMessage `json:"normalizers"`
		} `json:"normalizer"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		Model        json.RawMessage `json:"model"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if file.Normalizer.Type != "Sequence" {
		t.Fatalf("normalizer type %q, want Sequence", file.Normalizer.Type)
	}
	p := &xlmrPipeline{}
	for _, raw := range file.Normalizer.Normalizers {
		typ, err := componentType(raw)
		if err != nil {
			t.Fatal(err)
		}
		ctor, ok := normalizerCtors[typ]
		if !ok {
			t.Fatalf("normalizer %q is not registered", typ)
		}
		n, err := ctor(raw)
		if err != nil {
			t.Fatalf("normalizer %s: %v", typ, err)
		}
		p.norms = append(p.norms, n)
	}
	pre, err := preTokenizerCtors["Metaspace"](file.PreTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	p.pre = pre.(*metaspace)
	m, err := modelCtors["Unigram"](file.Model)
	if err != nil {
		t.Fatal(err)
	}
	p.model = m.(*unigram)
	var ok1, ok2 bool
	p.bos, ok1 = p.model.TokenToID("<s>")
	p.eos, ok2 = p.model.TokenToID("</s>")
	if !ok1 || !ok2 {
		t.Fatal("vocab lacks <s> or </s>")
	}
	return p
}

func (p *xlmrPipeline) encode(text string, maxLen int) []int32 {
	for _, n := range p.norms {
		text = n.Normalize(text)
	}
	var seq []int32
	for _, w := range p.pre.PreTokenize(nil, text) {
		seq = p.model.Tokenize(seq, w)
	}
	if len(seq) > maxLen-2 {
		seq = seq[:maxLen-2]
	}
	return append(append([]int32{p.bos}, seq...), p.eos)
}

// TestUnigramXLMRReference checks the hand-composed XLM-R pipeline against
// the input ids Hugging Face fed tiny-xlmr for every reference row.
func TestUnigramXLMRReference(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-xlmr")
	p := loadXLMRPipeline(t, dir)
	maxLen := xlmrMaxLen(t, dir)
	rows := refs.Read[refs.Row](t, "tiny-xlmr.parquet")
	if len(rows) == 0 {
		t.Fatal("no reference rows")
	}
	bad := 0
	for i, r := range rows {
		if r.Text == nil {
			continue
		}
		got := p.encode(*r.Text, maxLen)
		if !slices.Equal(got, r.InputIDs) {
			bad++
			if bad <= 10 {
				t.Errorf("row %d %q:\n got %v\nwant %v", i, trimForLog(*r.Text), got, r.InputIDs)
			}
		}
	}
	t.Logf("%d/%d rows match", len(rows)-bad, len(rows))
	if bad > 0 {
		t.Errorf("%d of %d rows differ", bad, len(rows))
	}
}

func trimForLog(s string) string {
	if len(s) > 120 {
		s = s[:120]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

var _ = strings.Repeat
