// Package safetensors reads model checkpoints in the safetensors format: a
// single .safetensors file, or a Hugging Face model directory holding
// model.safetensors or model.safetensors.index.json with its shards.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON describing every tensor (dtype, shape, byte offsets into the data
// section) plus an optional "__metadata__" string map, and then the data
// section. Open validates the whole header before it exposes a single tensor:
// the length prefix is bounded, the JSON is one object without duplicate
// keys, every dtype is known, every shape is free of overflow, and the
// tensors tile the data section exactly, in the same way as the reference
// Rust implementation. Every later read is therefore bounded by the size of
// the file on disk, so a lying header yields an error wrapping ErrHeader
// rather than a panic or a huge allocation.
//
// Files are memory-mapped read-only where the platform allows it and read
// into memory otherwise. Float32 and Float32To convert F32, F16 and BF16
// tensors exactly into float32 slices owned by the caller; other dtypes are
// described by Info but refused by the converters with ErrDType.
//
// A Checkpoint is safe for concurrent use. Close waits for conversions in
// flight and makes later calls fail with ErrClosed.
package safetensors
