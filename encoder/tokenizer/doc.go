// Package tokenizer turns text into the token ids a model was trained on,
// reading Hugging Face tokenizer.json files (and the older vocab.txt +
// tokenizer_config.json layout).
//
// A Tokenizer is a pipeline of composable stages, as in Hugging Face
// tokenizers: added (special) tokens are split out first, then a Normalizer
// rewrites the remaining text, a PreTokenizer cuts it into words, a Model
// (WordPiece, Unigram, BPE or WordLevel) turns each word into ids, and a
// PostProcessor adds the template's special tokens. Truncation keeps the
// special tokens. The goal is exact equality with the ids Hugging Face
// tokenizers produces; the tests compare against reference outputs of
// tokenizers 0.23 for every row of the shared corpus.
//
// Each component lives in a file of its own and registers a constructor
// for its tokenizer.json "type" in stages.go's registries; loading a file
// with an unregistered type fails with ErrUnsupported and the list of the
// supported ones. Implemented:
//
//   - normalizers: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, Strip,
//     StripAccents, Prepend, Replace, Precompiled, Sequence;
//   - pre-tokenizers: BertPreTokenizer, ByteLevel (GPT-2 split written out
//     by hand, since Go's regexp lacks look-ahead), Split (Oniguruma
//     patterns translated to Go, with the \s+(?!\S) look-ahead emulated),
//     Whitespace, WhitespaceSplit, Punctuation, Digits, Metaspace, Sequence;
//   - models: WordPiece, BPE (byte fallback, ignore_merges, both merge
//     serialisations), Unigram, WordLevel;
//   - post-processors: TemplateProcessing, BertProcessing,
//     RobertaProcessing, ByteLevel, Sequence.
//
// A Tokenizer is immutable after loading and safe for concurrent use;
// EncodeTo appends to a caller-owned buffer and pools its scratch space.
package tokenizer
