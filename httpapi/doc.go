// Package httpapi serves embeddings over HTTP in the two shapes clients
// already speak: OpenAI's POST /v1/embeddings (the OpenAI SDKs, LangChain's
// OpenAIEmbeddings) and text-embeddings-inference's POST /embed, POST
// /embed_sparse (a SPLADE model), POST /rerank (a cross-encoder), POST
// /tokenize and GET /info, next to /metrics, /health and /live. An
// endpoint the model's kind cannot serve answers TEI's 424 (OpenAI's 400).
//
// Requests are tokenized in the handler and join the dynamic batches of a
// workers.Batcher (vectors, pairs and sparse vectors each batched with
// their own kind), the same batcher the NATS embed endpoint feeds, so HTTP
// and NATS clients share batches and get the same vectors as embedpipe
// embed. The batcher's queue is bounded: a request beyond it gets 429 with
// Retry-After, never unbounded memory. Limits (inputs per request, tokens
// per input, body size) are enforced with errors in each API's own shape.
package httpapi
