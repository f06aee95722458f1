// Package refs locates the read-only shared material (models, reference
// outputs, peers) that sits beside the repository as ../shared, and reads the
// reference Parquet files made by Hugging Face transformers and
// sentence-transformers. It is for tests and benchmarks only.
package refs
