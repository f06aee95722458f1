// Package encoder turns texts into embeddings with a transformer encoder
// loaded from a Hugging Face / sentence-transformers model directory.
//
// Load reads config.json, the safetensors checkpoint, the tokenizer and the
// sentence-transformers module files (modules.json, sentence_bert_config.json,
// 1_Pooling/config.json, 2_Normalize, config_sentence_transformers.json) and
// returns a Model. The Model holds the weights once and is safe for
// concurrent use; every call takes its working memory from a pool, so steady
// state embedding does not allocate.
//
// The forward pass runs on the real tokens of a Batch concatenated without
// padding (see package arch), so a sequence's embedding is bit-for-bit the
// same whatever batch it is in. Pooling (mean, cls, max, mean_sqrt_len,
// weightedmean, lasttoken), normalisation and prompts follow
// sentence-transformers.
//
// The usual flow for a pipeline stage is: Reset a Batch, AppendTo it one text
// at a time (or Add ids from TokenizeTo), then EmbedBatch into a
// caller-owned row-major []float32 of Len()×Dim() floats.
package encoder
