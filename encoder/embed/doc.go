// Package embed is embedpipe's one seam from texts to vectors: every path
// that embeds (the file pipeline, the NATS embed service, the stream bridge,
// and the HTTP API and sinks built on them) resolves its options into a
// Config once and calls an Embedder, and none of them tokenizes, batches,
// truncates, normalizes or quantizes by itself. The same texts and options
// therefore give the same bits whichever path they take.
//
// Resolve turns user Options (flags, a job's schemas.Options, a request) into
// a Config: defaults are applied, the prompt name becomes its text, the
// prompt's pooling skip is computed for a model whose Pooling module says
// include_prompt false, and what the model cannot honour is refused with the
// reason. An Embedder over a Config then
//
//   - tokenizes with the prompt and the resolved max length (TokenizeTo),
//   - cuts length-sorted sequences into batches by the token budget (Cut),
//   - encodes and pools them, leaving prompt tokens out of the pooling when
//     the model asks for it (EmbedIDs),
//   - keeps the first Dim dimensions (Matryoshka truncation) and normalizes
//     them with encoder.Normalize when the Config says so,
//   - and quantizes as sentence-transformers' quantize_embeddings
//     (QuantizeTo, with Ranges for int8 and uint8).
//
// Callers own every output buffer: vectors are flat row-major []float32 with
// stride Dim, quantized rows flat []byte with stride Width.
package embed
