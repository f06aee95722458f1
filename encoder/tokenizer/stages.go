package tokenizer

// Normalizer rewrites text before pre-tokenization (lower-casing, accent
// stripping, Unicode normalisation, …). Implementations must be safe for
// concurrent use and must not retain s.
type Normalizer interface {
	Normalize(s string) string
}

// PreTokenizer cuts normalised text into words. It appends the words of s to
// dst and returns the extended slice. Implementations must be safe for
// concurrent use.
type PreTokenizer interface {
	PreTokenize(dst []string, s string) []string
}

// Model turns one pre-tokenized word into token ids, appending them to dst.
// Implementations must be safe for concurrent use.
type Model interface {
	Tokenize(dst []int32, word string) []int32
	// TokenToID returns the id of a vocabulary entry.
	TokenToID(tok string) (int32, bool)
	// IDToToken returns the vocabulary entry for id, or "" if there is none.
	IDToToken(id int32) string
	// VocabSize is the number of entries in the model's vocabulary.
	VocabSize() int
}
