package encoder_test

// The architectures beyond BERT join the shared fidelity tables, so
// TestFidelity and TestTokenEmbeddingsFidelity check them exactly as they
// check BERT: every reference row from the reference ids and from our own
// tokenization, and the token vectors of the first 48 texts.
func init() {
	fidelityCases = append(fidelityCases,
		fidelityCase{name: "tiny-xlmr", maxAbs: 2e-5},
		fidelityCase{name: "tiny-mpnet", maxAbs: 2e-5},
		fidelityCase{name: "tiny-modernbert", maxAbs: 2e-5},
	)
}
