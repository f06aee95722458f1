// Package arch holds the transformer architectures of the encoder and the
// shared layers they are composed from.
//
// An architecture is a Builder registered under the Hugging Face model_type
// of config.json. A Builder reads its hyper-parameters from a Config and its
// parameters from a Weights source and returns an Encoder, whose Forward runs
// the whole stack over a batch of sequences concatenated without padding:
// every matrix product works on the real tokens of all sequences at once, and
// only attention looks at sequence boundaries. Because nothing is padded, the
// result for one sequence never depends on its batch mates.
//
// # Shared layers
//
//   - Linear layers are kernels.Dense values loaded by LoadDense; several
//     projections that read the same input (Q, K and V; gate and up) are fused
//     into one Dense by LoadFusedDense so one GEMM serves them all.
//   - Norm wraps LayerNorm (with or without bias) and RMSNorm.
//   - Embedding gathers rows of an embedding table.
//   - Attention is multi-head (or grouped-query) scaled dot-product attention
//     over a fused QKV projection. Positions and masks are pluggable: a
//     QKTransform rewrites queries and keys of one sequence before the scores
//     (rotary embeddings, QK-norm), a ScoreBias adds to the scores of one head
//     (relative position buckets), and a Mask restricts which keys a query
//     sees (bidirectional, causal, sliding window). The scores are fused
//     (kernels.Attender, flash-style tiles with an online softmax): working
//     memory is O(n·HeadDim) per goroutine, never n², and key blocks the
//     mask hides from a whole query tile are skipped. A Scratch.Pool splits
//     the (sequence, KV head) pairs across its workers.
//   - An Observer set on the Scratch (observe.go) makes attention take the
//     materialising path (each head's n×n probabilities, n² floats of
//     scratch) so that the probabilities can be shown; without one nothing
//     is materialised.
//   - Rotary is the QKTransform of rotary position embeddings, with optional
//     per-head QK-norm; its angles are computed in float32 as transformers
//     does. MPNet's relative position buckets are a ScoreBias shared by all
//     layers.
//   - MLP is the feed-forward block, plain (up, activation, down) or gated
//     (GLU family: activation of the first half times the second half).
//   - Whole layers are shared too (blocks.go): postNormLayer, loaded by
//     loadPostNormLayer from a table of tensor names, is the post-norm layer
//     of BERT, XLM-R and MPNet; preNormLayer, run by runPreNorm, is the
//     pre-norm layer of ModernBERT and Qwen3, whose feed-forward block is a
//     feedForward (a dense MLP or Qwen3-MoE's experts).
//
// All numeric work goes through package kernels so that faster kernels serve
// every architecture at once.
//
// # Adding an architecture
//
// Adding an architecture is one file, say xlmr.go:
//
//  1. Declare a config struct and parse it from the Config with its typed
//     getters (Config.Int, IntOr, FloatOr, StringOr, BoolOr, Decode); they
//     return errors that name config.json and the key.
//  2. Load the parameters with LoadDense, LoadFusedDense, LoadNorm and
//     Weights.Float32 (shapes are checked; errors name the tensor). Use
//     ResolvePrefix to accept checkpoints with and without the model prefix
//     ("bert.", "model.", "roberta.").
//  3. Implement Encoder: Forward takes the concatenated ids, the sequence
//     starts, a Scratch for per-call buffers (take them with Scratch.Buf so a
//     pooled Scratch makes steady state allocation-free) and the destination
//     of len(ids)×Hidden() floats. Validate with CheckBatch first;
//     embedBatch does it and gathers the word embeddings into the
//     destination. Pass Scratch.Pool to the dense layers (ForwardParallel,
//     MLP.ForwardPool, Attention.Buffers does it for attention) so
//     WithThreads can split them. WordEmbedding exposes the static input
//     embedding table (wordRow).
//  4. Register the Builder in an init function: Register("xlm-roberta", …).
//  5. Add a fidelity test against the shared refs.
//
// Architectures must validate their input (ids in range, sequences not longer
// than the position table) and return errors, never panic.
package arch
