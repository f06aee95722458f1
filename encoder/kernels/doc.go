// Package kernels holds the numeric building blocks of the encoder: matrix
// multiplication, softmax, normalisation and activation functions.
//
// Every exported kernel has a pure-Go reference implementation in this
// package (ref.go) that defines its exact semantics. Faster implementations
// (SIMD assembly on amd64) sit behind the same functions, are selected once
// at start-up, and are checked against the references by differential tests.
// The purego build tag forces the portable path everywhere: the GEMMs on
// gonum's BLAS, the other kernels on their references.
//
// All matrices are flat row-major []float32 slices. Callers own every buffer;
// kernels never allocate in steady state. Shape mismatches are programmer
// errors and panic.
//
// # Dispatch
//
// On amd64 CPUs with AVX2 and FMA (golang.org/x/sys/cpu, read once at
// start-up) the GEMMs, Softmax, LayerNorm, RMSNorm, GELU, GELUTanh, SiLU,
// Add and AddBiasRows run AVX2 assembly; everywhere else, and with the
// purego tag, the GEMMs (SgemmNT, SgemmNN, Dense, the attention tiles) run
// on gonum.org/v1/gonum/blas/gonum in blocks of 64×192 (portable.go), spread
// over the Pool and allocation-free, and the other kernels run their
// references. GOARCH=arm64 go test -exec qemu-aarch64-static runs the
// kernel tests and a fidelity subset on that path (.ci/run). There is no AVX-512 path yet: the
// development machine (AMD Zen 4 under KVM) does not expose AVX-512, so such
// a kernel could not be tested here.
//
// # GEMM
//
// SgemmNT, SgemmNN and Dense share one packed GEMM (gemm.go): B is packed
// into 16-column panels blocked by 384 rows of k, A is read in place six
// rows at a time, and a 6×16 AVX2 micro-kernel (sgemm_amd64.s, twelve ymm
// accumulators) computes each tile. NewDense packs its weights once, so
// Dense.Forward packs nothing; SgemmNT and SgemmNN pack B per call into
// per-goroutine scratch that is reused, so they do not allocate either.
//
// # Threads
//
// A Pool is a fixed set of worker goroutines owned by its creator
// (NewPool(threads), Close). Dense.ForwardParallel(pool, dst, x, rows, act)
// splits the rows of one product across the pool's participants (the
// calling goroutine is one of them) and applies an elementwise activation
// (GELU, ReLU…) to each finished block while it is still in cache; a nil
// pool runs on the calling goroutine. Dense.ForwardAdd(pool, dst, x, rows)
// adds the layer's output to dst (a residual connection) without a
// temporary or a separate Add pass. Pool.For runs a function over index
// ranges, for work the caller splits itself. A Pool runs one operation at a
// time; code that already runs in parallel (one goroutine per group of
// sequences) passes a nil pool instead.
//
// # Attention
//
// Attender (attention.go) is fused, flash-style attention for one head:
// SetKV packs the keys and values once (into the micro-kernel's panel
// layout on the SIMD path), optionally after a cached prefix segment, and
// Attend computes the context of a group of query heads in tiles of 48
// queries × 256 keys: scores with the 6×16 micro-kernel, a ScoreBias per
// tile, an online softmax (running row maximum and sum, the context
// rescaled when the maximum grows) and the probabilities times the values
// added to a context tile. Key blocks outside the union of a tile's Mask
// ranges are never visited, so causal attention computes about half the
// scores and a 128-token sliding window about 128+48 keys per query tile.
// Working memory per goroutine is the packed keys and values (8·n·d bytes)
// plus about 62 KB of tiles: 4,257,664 bytes for n = 8,192, d = 64, where a
// materialised score matrix would take 268,435,456 bytes per head.
// attentionRef, materialising each row in float64, is its ground truth.
//
// # Int8
//
// NewDenseInt8 (ComputeInt8) builds a Dense that computes with dynamic
// int8: weights quantized once (symmetric, per output channel), each input
// row quantized per call (symmetric, one scale per row/token), int32 sums,
// and float32 dequantization and bias; qdense.go states the exact
// semantics, which the pure-Go reference defines. The AVX2 path widens the
// int8 values to int16 and multiplies pairs with VPMADDWD in a 6×16 tile
// (qgemm_amd64.s), which is exact (no saturation) and bit-identical to the
// reference, tests included. It is about 1.5× the float32 GEMM per CPU
// second here.
//
// # BF16
//
// NewDenseBF16 (ComputeBF16) builds a Dense with the numbers of a bf16 dot
// product with float32 accumulation (AVX512_BF16's VDPBF16PS): weights
// rounded to bfloat16 once (round to nearest even, NaN kept), each input
// row rounded per call (RoundBF16To, AVX2 where available, into per-call
// scratch), then the float32 GEMM on those values; bfdense.go states the
// semantics and the pure-Go reference. There are no AVX512_BF16 kernels in this package (no
// such CPU to test them on), so on every CPU this mode is an accuracy
// emulation at float32 speed and memory, with no speed gain.
//
// # Accuracy of the SIMD paths
//
// The GEMMs sum in a different order than the references (float32
// rounding only). Softmax and the norms accumulate in float32 with eight
// lanes; exp is the Cephes polynomial (about one ulp). GELU evaluates erf
// with a faithfully-rounded float32 polynomial below |x|/√2 = 0.93 and erfc
// as exp of a polynomial above, so it is within 1e-6 relative of the
// float64 reference where |GELU(x)| ≥ 0.1 and within 1e-7 absolute below
// (about 3e-8 measured). The tests state each bound.
//
// # Measuring
//
// go test -bench . reports GFLOP/s (wall clock, and per CPU second, which
// is what matters on a shared machine) for Dense on the encoder's shapes,
// for the attention products and for the micro-kernel alone.
// EMBEDPIPE_TUNE=1 go test -run Tune compares block sizes and operand
// placements by thread CPU time.
package kernels
