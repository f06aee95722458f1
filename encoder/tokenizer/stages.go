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

// PostProcessor adds a template's special tokens around the ids of one
// sequence. It appends the processed ids and their token type ids to
// ids/typeIDs (which arrive empty) given the model ids of the sequence.
type PostProcessor interface {
	Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32)
	// Added is the number of ids Process adds around a sequence; truncation
	// keeps room for them.
	Added() int
}

// The loader of tokenizer.json dispatches each component by its "type" field
// to a constructor registered here, so that each component lives in a file of
// its own. Constructors get the component's raw JSON object; model
// constructors also get the added tokens of the file.
type (
	normalizerCtor    func(raw []byte) (Normalizer, error)
	preTokenizerCtor  func(raw []byte) (PreTokenizer, error)
	modelCtor         func(raw []byte) (Model, error)
	postProcessorCtor func(raw []byte, vocab Model) (PostProcessor, error)
)

var (
	normalizerCtors    = map[string]normalizerCtor{}
	preTokenizerCtors  = map[string]preTokenizerCtor{}
	modelCtors         = map[string]modelCtor{}
	postProcessorCtors = map[string]postProcessorCtor{}
)
