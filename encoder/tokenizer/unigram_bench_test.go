package tokenizer

import (
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// xlmrBenchTexts returns the reference texts and their total byte size.
func xlmrBenchTexts(b *testing.B) ([]string, int64) {
	rows := refs.Read[refs.Row](b, "tiny-xlmr.parquet")
	texts := make([]string, 0, len(rows))
	var n int64
	for _, r := range rows {
		if r.Text != nil {
			texts = append(texts, *r.Text)
			n += int64(len(*r.Text))
		}
	}
	return texts, n
}

// BenchmarkPrecompiledXLMR measures the charsmap normalizer over the corpus.
func BenchmarkPrecompiledXLMR(b *testing.B) {
	p := xlmrPrecompiled(b)
	texts, n := xlmrBenchTexts(b)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range texts {
			_ = p.Normalize(s)
		}
	}
}

// BenchmarkUnigramXLMR measures Metaspace and Unigram over the normalized
// corpus.
func BenchmarkUnigramXLMR(b *testing.B) {
	p := loadXLMRPipeline(b, refs.ModelDir(b, "tiny-xlmr"))
	texts, n := xlmrBenchTexts(b)
	norm := make([]string, len(texts))
	for i, s := range texts {
		for _, nz := range p.norms {
			s = nz.Normalize(s)
		}
		norm[i] = s
	}
	b.SetBytes(n)
	b.ReportAllocs()
	var words []string
	var ids []int32
	for b.Loop() {
		for _, s := range norm {
			words = p.pre.PreTokenize(words[:0], s)
			for _, w := range words {
				ids = p.model.Tokenize(ids[:0], w)
			}
		}
	}
}
