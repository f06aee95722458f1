// Package metrics holds embedpipe's Prometheus metrics and the HTTP
// handlers operators expect: /metrics (Prometheus text format, through
// github.com/prometheus/client_golang), /health (ready) and /live.
//
// Metrics whose meaning is the same as one of text-embeddings-inference's
// carry TEI's name, so dashboards made for TEI work unchanged:
//
//	te_request_count{method}             requests received ("single" or "batch")
//	te_request_success{method}           requests answered
//	te_request_failure{err}              requests refused or failed ("validation",
//	                                     "tokenizer", "overloaded", "unauthorized", "backend")
//	te_request_duration                  end-to-end request latency (seconds)
//	te_request_tokenization_duration     tokenization latency (seconds)
//	te_request_queue_duration            time from queueing to the start of encoding (seconds)
//	te_request_inference_duration        encoder time of the batch a request rode in (seconds)
//	te_request_input_length              tokens per input
//	te_queue_size                        requests waiting for the encoder
//	te_batch_next_size                   inputs per encoder batch
//	te_batch_next_tokens                 tokens per encoder batch
//
// The others are embedpipe's own:
//
//	embedpipe_requests_total{api,outcome}       requests by API ("openai", "tei", "nats") and outcome
//	embedpipe_tasks_total{outcome}              job tasks by outcome ("done", "retried", "failed", "cancelled")
//	embedpipe_rows_embedded_total               rows (texts) embedded
//	embedpipe_tokens_embedded_total             tokens embedded
//	embedpipe_errors_total{kind}                errors by kind
//	embedpipe_jetstream_consumer_pending        tasks waiting in the JetStream consumer (the fleet's scaling signal)
//	embedpipe_jetstream_consumer_ack_pending    tasks delivered and not yet acknowledged
//
// A Metrics value owns its registry, so tests and several servers in one
// process do not collide; a nil *Metrics is valid and records nothing.
package metrics
