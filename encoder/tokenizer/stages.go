package tokenizer

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

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

// segmentPreTokenizer is implemented by pre-tokenizers whose output depends
// on whether a segment (the text between added tokens) begins the input, as
// Metaspace's "first" prepend scheme does. The Tokenizer calls
// PreTokenizeSegment instead of PreTokenize when it is there.
type segmentPreTokenizer interface {
	PreTokenizeSegment(dst []string, s string, atStart bool) []string
}

// Model turns one pre-tokenized word into token ids, appending them to dst.
// Implementations must be safe for concurrent use.
type Model interface {
	Tokenize(dst []int32, word string) []int32
	// TokenToID returns the id of a vocabulary entry.
	TokenToID(tok string) (int32, bool)
	// IDToToken returns the vocabulary entry for id, or "" if there is none.
	IDToToken(id int32) string
	// VocabSize is one more than the largest id the model can return: the
	// number of entries of a vocabulary whose ids are dense.
	VocabSize() int
}

// PostProcessor adds a template's special tokens around the ids of one
// sequence. It appends the processed ids and their token type ids to
// ids/typeIDs given the model ids of the sequence, and returns the extended
// slices; it must not assume ids arrives empty.
type PostProcessor interface {
	Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32)
	// Added is the number of ids Process adds around a sequence; truncation
	// keeps room for them.
	Added() int
}

// The loader of tokenizer.json dispatches each component by its "type" field
// to a constructor registered here, so that each component lives in a file of
// its own. Constructors get the component's raw JSON object; post-processor
// constructors also get the model, to resolve token names.
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

// componentType reads the "type" field of a component's JSON object.
func componentType(raw []byte) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", err
	}
	if head.Type == nil {
		return "", fmt.Errorf("component has no \"type\" field")
	}
	return *head.Type, nil
}

// lookupCtor finds the constructor registered for the component raw of the
// given kind ("normalizer", …), or explains which types are supported.
func lookupCtor[C any](kind string, reg map[string]C, raw []byte) (C, string, error) {
	var zero C
	typ, err := componentType(raw)
	if err != nil {
		return zero, "", fmt.Errorf("%w: %s: %v", ErrFormat, kind, err)
	}
	ctor, ok := reg[typ]
	if !ok {
		names := make([]string, 0, len(reg))
		for n := range reg {
			names = append(names, n)
		}
		sort.Strings(names)
		return zero, typ, fmt.Errorf("%w: %s type %q (supported: %s)", ErrUnsupported, kind, typ, strings.Join(names, ", "))
	}
	return ctor, typ, nil
}

// newComponent builds the component raw of the given kind with the
// constructor its type names, and returns it with that type; build calls
// the constructor. An error of the constructor is prefixed with the kind and
// type, so that it says which component of tokenizer.json is wrong.
func newComponent[T, C any](kind string, reg map[string]C, raw []byte, build func(C) (T, error)) (T, string, error) {
	var zero T
	ctor, typ, err := lookupCtor(kind, reg, raw)
	if err != nil {
		return zero, "", err
	}
	v, err := build(ctor)
	if err != nil {
		return zero, "", fmt.Errorf("%s %s: %w", kind, typ, err)
	}
	return v, typ, nil
}

func newNormalizer(raw []byte) (Normalizer, error) {
	v, _, err := newComponent("normalizer", normalizerCtors, raw, func(c normalizerCtor) (Normalizer, error) { return c(raw) })
	return v, err
}

func newPreTokenizer(raw []byte) (PreTokenizer, error) {
	v, _, err := newComponent("pre_tokenizer", preTokenizerCtors, raw, func(c preTokenizerCtor) (PreTokenizer, error) { return c(raw) })
	return v, err
}

func newPostProcessor(raw []byte, m Model) (PostProcessor, error) {
	v, _, err := newComponent("post_processor", postProcessorCtors, raw, func(c postProcessorCtor) (PostProcessor, error) { return c(raw, m) })
	return v, err
}

// decodeConfig decodes raw, the tokenizer.json object of the component named
// what (such as "Replace normalizer"), into a T. An error wraps ErrFormat
// and names the component.
func decodeConfig[T any](raw []byte, what string) (T, error) {
	var cfg T
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("%w: decoding %s: %v", ErrFormat, what, err)
	}
	return cfg, nil
}

// errNoField is the ErrFormat error of the component named what whose
// tokenizer.json object lacks the required field.
func errNoField(what, field string) error {
	return fmt.Errorf("%w: %s has no %s", ErrFormat, what, field)
}

// formatErr wraps a component's decoding error as ErrFormat.
func formatErr(err error) error {
	return fmt.Errorf("%w: %v", ErrFormat, err)
}
