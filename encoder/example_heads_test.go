package encoder_test

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder"
)

// These examples use the head models of the shared reference material,
// which the repository does not bundle, so they are compiled but not run;
// TestFidelitySparse and TestFidelityReranker run the same calls.

// ExampleModel_EmbedSparseBatch encodes two texts with a SPLADE model into
// caller-owned sparse vectors, keeping each vector's ten largest weights.
func ExampleModel_EmbedSparseBatch() {
	m, err := encoder.Load("../../shared/models/tiny-splade")
	if err != nil {
		fmt.Println(err)
		return
	}
	var b encoder.Batch
	for _, text := range []string{"The bank of the river was muddy.", "She deposited money at the bank."} {
		if _, err := m.AppendTo(&b, text, "", 0); err != nil {
			fmt.Println(err)
			return
		}
	}
	// sv is reused across batches: Reset keeps its memory.
	var sv encoder.SparseVectors
	if err := m.EmbedSparseBatch(context.Background(), &b, encoder.SparseOptions{TopK: 10}, &sv); err != nil {
		fmt.Println(err)
		return
	}
	for i := range sv.Len() {
		idx, val := sv.Vector(i)
		for k := range idx {
			fmt.Printf("%s=%.3f ", m.Tokenizer().IDToToken(idx[k]), val[k])
		}
		fmt.Println()
	}
}

// ExampleModel_Rerank orders passages by a cross-encoder's relevance score
// for one query.
func ExampleModel_Rerank() {
	m, err := encoder.Load("../../shared/models/tiny-reranker")
	if err != nil {
		fmt.Println(err)
		return
	}
	docs := []string{"Paris is the capital of France.", "The bank of the river was muddy.", "France borders Spain."}
	scores := make([]float32, len(docs)*m.NumLabels())
	order, err := m.Rerank(context.Background(), "What is the capital of France?", docs, scores)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, i := range order {
		fmt.Printf("%.4f %s\n", scores[i], docs[i])
	}
}

// ExampleModel_ScoreBatch tokenizes (query, document) pairs into a reusable
// Batch, with token types and longest-first truncation, and scores them
// into caller-owned logit and score buffers.
func ExampleModel_ScoreBatch() {
	m, err := encoder.Load("../../shared/models/tiny-reranker")
	if err != nil {
		fmt.Println(err)
		return
	}
	var b encoder.Batch
	pairs := [][2]string{{"how deep is the river", "The bank of the river was muddy."}, {"interest rates", "She deposited money at the bank."}}
	for _, p := range pairs {
		if _, err := m.AppendPairTo(&b, p[0], p[1], 64); err != nil {
			fmt.Println(err)
			return
		}
	}
	logits, scores := make([]float32, b.Len()), make([]float32, b.Len())
	if err := m.ScoreBatch(context.Background(), &b, logits, scores); err != nil {
		fmt.Println(err)
		return
	}
	for i, p := range pairs {
		fmt.Printf("%q: logit %.3f, score %.3f (types %v)\n", p[0], logits[i], scores[i], b.Types[b.Starts[i]:b.Starts[i+1]])
	}
}
