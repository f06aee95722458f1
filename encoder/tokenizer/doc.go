// Package tokenizer turns text into the token ids a model was trained on,
// reading Hugging Face tokenizer.json files (and the older vocab.txt +
// tokenizer_config.json layout).
//
// A Tokenizer is a pipeline of composable stages, as in Hugging Face
// tokenizers: added (special) tokens are split out first, then a Normalizer
// rewrites the remaining text, a PreTokenizer cuts it into words, a Model
// (WordPiece, Unigram or BPE) turns each word into ids, and a PostProcessor
// adds the template's special tokens. Truncation keeps the special tokens.
// The goal is exact equality with the ids Hugging Face tokenizers produces.
package tokenizer
