package kernels

import "sync"

// The fast GEMM follows the usual packed design (Goto/BLIS): B is packed
// into panels of gemmNR columns, blocked by gemmKC rows of k, so that the
// micro-kernel streams it contiguously; A is read in place, six rows at a
// time, because packing it would cost as much as the multiply saves at the
// encoder's narrow n (384). Rows are blocked by gemmMC so that the A rows of
// one block (gemmMC×gemmKC floats) stay in L2 while every B panel of a k
// block streams past them, and one panel (gemmKC×gemmNR floats, 16 KiB)
// stays in L1 across the row panels of the block.
const (
	gemmMR    = 6   // rows of the micro-kernel tile
	gemmNR    = 16  // columns of the micro-kernel tile (two AVX2 vectors)
	gemmMaxKC = 512 // bound of gemmKC (sizes scratch.apad)
)

// The block sizes are variables only so that the tuning benchmark can try
// others; packed weights depend on gemmKC, so it must not change while any
// Dense exists.
var (
	gemmPrefetchB = true
	gemmKC        = 384 // k block: the encoder's k = 384 in one pass
	gemmMC        = 240 // row block bound, a multiple of gemmMR
)

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// packedLen is the length of the packed form of a k×n matrix B.
func packedLen(n, k int) int { return roundUp(n, gemmNR) * k }

// The packed layout: the k block starting at row pc occupies
// dst[pc*npad : pc*npad+kc*npad] (npad = n rounded up to gemmNR, kc = the
// block's height); within it, the panel of columns jr…jr+gemmNR-1 occupies
// kc*gemmNR floats from offset jr*kc, row p of the panel at p*gemmNR.
// Columns past n are zero.

// packBT packs B given transposed: b holds n rows of k floats (stride ldb),
// row j being column j of B. This is the layout of nn.Linear weights and of
// the keys in attention scores.
func packBT(dst, b []float32, ldb, n, k int) {
	npad := roundUp(n, gemmNR)
	for pc := 0; pc < k; pc += gemmKC {
		kc := min(gemmKC, k-pc)
		blk := dst[pc*npad : pc*npad+kc*npad]
		for jr := 0; jr < npad; jr += gemmNR {
			pan := blk[jr*kc : (jr+gemmNR)*kc]
			w := min(gemmNR, n-jr)
			if w < gemmNR {
				clear(pan)
			}
			// Four columns at a time: one bounds check per four stores
			// (attention scores pack a new K for every sequence and head).
			j := 0
			for ; j+4 <= w; j += 4 {
				s0 := b[(jr+j)*ldb+pc:][:kc]
				s1 := b[(jr+j+1)*ldb+pc:][:kc]
				s2 := b[(jr+j+2)*ldb+pc:][:kc]
				s3 := b[(jr+j+3)*ldb+pc:][:kc]
				for p := range s0 {
					d := pan[p*gemmNR+j : p*gemmNR+j+4 : p*gemmNR+j+4]
					d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
				}
			}
			for ; j < w; j++ {
				src := b[(jr+j)*ldb+pc:][:kc]
				for p, v := range src {
					pan[p*gemmNR+j] = v
				}
			}
		}
	}
}

// packBN packs B given as k rows of n floats (stride ldb).
func packBN(dst, b []float32, ldb, n, k int) {
	npad := roundUp(n, gemmNR)
	for pc := 0; pc < k; pc += gemmKC {
		kc := min(gemmKC, k-pc)
		blk := dst[pc*npad : pc*npad+kc*npad]
		for jr := 0; jr < npad; jr += gemmNR {
			pan := blk[jr*kc : (jr+gemmNR)*kc]
			w := min(gemmNR, n-jr)
			for p := 0; p < kc; p++ {
				row := b[(pc+p)*ldb+jr:]
				d := pan[p*gemmNR : p*gemmNR+gemmNR]
				copy(d[:w], row[:w])
				clear(d[w:])
			}
		}
	}
}

// scratch is the per-goroutine working memory of the packed GEMM.
type scratch struct {
	apad [gemmMR * gemmMaxKC]float32 // the last, partial row panel, zero-padded
	tile [gemmMR * gemmNR]float32    // a partial C tile
	bp   []float32                   // packed B of SgemmNT/SgemmNN calls

	// The int8 Dense's quantized rows, their scales and a raw partial tile.
	qa    []int16
	qs    []float32
	itile [qMR * qNR]int32

	// xb holds the bf16-rounded input rows of a NewDenseBF16 layer.
	xb []float32
}

// packBuf returns s.bp with at least n floats, growing it only when needed
// so that steady-state calls do not allocate.
func (s *scratch) packBuf(n int) []float32 {
	if cap(s.bp) < n {
		s.bp = make([]float32, n)
	}
	return s.bp[:n]
}

// scratchFree is a free list of scratch values for calls that come without
// a Pool. Unlike sync.Pool it is never emptied by the garbage collector, so
// steady state never allocates; it holds at most as many values as
// goroutines ever ran GEMMs at once.
var (
	scratchMu   sync.Mutex
	scratchFree []*scratch
)

func getScratch() *scratch {
	scratchMu.Lock()
	if n := len(scratchFree); n > 0 {
		s := scratchFree[n-1]
		scratchFree = scratchFree[:n-1]
		scratchMu.Unlock()
		return s
	}
	scratchMu.Unlock()
	return new(scratch)
}

func putScratch(s *scratch) {
	scratchMu.Lock()
	scratchFree = append(scratchFree, s)
	scratchMu.Unlock()
}

// gemmOp is one product C[m×n] = alpha·A[m×k]·B + beta·C with B packed
// (bp), followed on each finished row block by C += bias (if any) and
// act(C) (if any).
type gemmOp struct {
	n, k  int
	alpha float32
	a     []float32
	lda   int
	bp    []float32
	beta  float32
	c     []float32
	ldc   int
	bias  []float32
	act   func([]float32)

	// portable selects gonum (portable.go) instead of the packed kernels:
	// B is then b, stride ldb, transposed (n rows of k) when bT.
	portable bool
	bT       bool
	b        []float32
	ldb      int
}

// rows computes rows i0…i1-1 of C. Goroutines may run disjoint row ranges
// of one gemmOp at once, each with its own scratch.
func (g *gemmOp) rows(i0, i1 int, s *scratch) {
	if g.portable {
		g.portableRows(i0, i1)
		return
	}
	n, k, lda, ldc := g.n, g.k, g.lda, g.ldc
	npad := roundUp(n, gemmNR)
	// Equal row blocks of at most gemmMC rows: a short last block would
	// stream all of B from L3 for a handful of rows.
	nb := (i1 - i0 + gemmMC - 1) / gemmMC
	step := roundUp((i1-i0+nb-1)/max(nb, 1), gemmMR)
	for ic := i0; ic < i1; ic += step {
		mc := min(step, i1-ic)
		if g.beta != 0 && g.beta != 1 {
			for i := ic; i < ic+mc; i++ {
				r := g.c[i*ldc : i*ldc+n]
				for j := range r {
					r[j] *= g.beta
				}
			}
		}
		full := mc / gemmMR * gemmMR
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			acc := 0
			if pc > 0 || g.beta != 0 {
				acc = 1
			}
			if full < mc {
				for r := 0; r < gemmMR; r++ {
					d := s.apad[r*kc : r*kc+kc]
					if r < mc-full {
						copy(d, g.a[(ic+full+r)*lda+pc:])
					} else {
						clear(d)
					}
				}
			}
			blk := g.bp[pc*npad : pc*npad+kc*npad]
			for jr := 0; jr < n; jr += gemmNR {
				pan := &blk[jr*kc]
				w := min(gemmNR, n-jr)
				// The first row panel also prefetches the next B panel, so
				// that it comes from L2 rather than L3 when its turn comes.
				var next *float32
				if gemmPrefetchB && jr+gemmNR < n {
					next = &blk[(jr+gemmNR)*kc]
				}
				for ir := 0; ir < full; ir += gemmMR {
					ap := &g.a[(ic+ir)*lda+pc]
					if w == gemmNR {
						sgemm6x16AVX2(kc, ap, lda, pan, &g.c[(ic+ir)*ldc+jr], ldc, g.alpha, acc, next)
					} else {
						sgemm6x16AVX2(kc, ap, lda, pan, &s.tile[0], gemmNR, g.alpha, 0, next)
						mergeTile(g.c[(ic+ir)*ldc+jr:], ldc, &s.tile, gemmMR, w, acc)
					}
					next = nil
				}
				if full < mc {
					sgemm6x16AVX2(kc, &s.apad[0], kc, pan, &s.tile[0], gemmNR, g.alpha, 0, next)
					mergeTile(g.c[(ic+full)*ldc+jr:], ldc, &s.tile, mc-full, w, acc)
				}
			}
		}
		g.epilogue(ic, mc)
	}
}

// epilogue adds the bias (if any) to rows ic…ic+mc-1 of C and applies the
// activation (if any) to them.
func (g *gemmOp) epilogue(ic, mc int) {
	if g.bias == nil && g.act == nil {
		return
	}
	n, ldc := g.n, g.ldc
	for i := ic; i < ic+mc; i++ {
		r := g.c[i*ldc : i*ldc+n]
		if g.bias != nil {
			Add(r, g.bias)
		}
		if g.act != nil && ldc != n {
			g.act(r)
		}
	}
	if g.act != nil && ldc == n {
		g.act(g.c[ic*ldc : (ic+mc)*ldc])
	}
}

// mergeTile stores (acc == 0) or adds (acc != 0) the top-left rows×cols of
// a micro-kernel tile into c.
func mergeTile(c []float32, ldc int, t *[gemmMR * gemmNR]float32, rows, cols, acc int) {
	for r := 0; r < rows; r++ {
		d := c[r*ldc : r*ldc+cols]
		src := t[r*gemmNR : r*gemmNR+cols]
		if acc != 0 {
			for j, v := range src {
				d[j] += v
			}
		} else {
			copy(d, src)
		}
	}
}

// checkGemm panics unless the buffers hold the shapes the GEMM addresses.
func checkGemm(m, n, k int, a []float32, lda int, b []float32, ldb, brows, bcols int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("kernels: negative GEMM dimension")
	}
	if m == 0 || n == 0 {
		return
	}
	if ldc < n || len(c) < (m-1)*ldc+n {
		panic("kernels: GEMM C buffer too small")
	}
	if k == 0 {
		return // A and B are not read
	}
	if lda < k || ldb < bcols {
		panic("kernels: GEMM stride smaller than row length")
	}
	if len(a) < (m-1)*lda+k || len(b) < (brows-1)*ldb+bcols {
		panic("kernels: GEMM buffer too small")
	}
}

// scaleC sets C = beta·C (beta == 0 clears, ignoring NaN), for k == 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		r := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(r)
		} else {
			for j := range r {
				r[j] *= beta
			}
		}
	}
}
