// Package kernels holds the numeric building blocks of the encoder: matrix
// multiplication, softmax, normalisation and activation functions.
//
// Every exported kernel has a pure-Go reference implementation in this
// package that defines its exact semantics. Faster implementations (SIMD
// assembly on amd64) sit behind the same functions, are selected once at
// start-up, and are checked against the references by differential tests.
// The purego build tag forces the references everywhere.
//
// All matrices are flat row-major []float32 slices. Callers own every buffer;
// kernels never allocate in steady state. Shape mismatches are programmer
// errors and panic.
package kernels
