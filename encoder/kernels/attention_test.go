package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// slopeBias adds head·0.05·(j−i) and records every tile it is given.
type slopeBias struct {
	mu    sync.Mutex
	tiles [][4]int // i0, rows, j0, cols
}

func (b *slopeBias) AddScoreBias(tile []float32, ld, head, i0, rows, j0, cols int) {
	b.mu.Lock()
	b.tiles = append(b.tiles, [4]int{i0, rows, j0, cols})
	b.mu.Unlock()
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			tile[r*ld+c] += float32(head) * 0.05 * float32(j0+c-i0-r)
		}
	}
}

// withTiles runs f with the attention tile sizes set to bq×bk.
func withTiles(bq, bk int, f func()) {
	sq, sk := attnBQ, attnBK
	defer func() { attnBQ, attnBK = sq, sk }()
	attnBQ, attnBK = bq, bk
	f()
}

// randKV returns keys and values of nk rows interleaved in one buffer of
// stride ld (as in a fused QKV buffer): keys at offset 0, values at hd.
func randKV(r *rand.Rand, nk, hd, ld int) []float32 {
	b := make([]float32, max(nk*ld, 1))
	for i := range b {
		b[i] = float32(r.NormFloat64())
	}
	return b
}

// TestAttenderAgainstRef compares fused attention with the materialising
// float64 reference at odd sizes, with and without a cached prefix, for
// every mask kind and the bias hook, on tiles small enough to cross many
// block boundaries and on the default tiles.
func TestAttenderAgainstRef(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		masks := []Mask{{}, {Causal: true}, {Window: 16}, {Window: 7}, {Causal: true, Window: 10}}
		for _, tiles := range [][2]int{{12, 32}, {attnBQ, attnBK}} {
			for _, hd := range []int{1, 8, 13, 32, 64} {
				for _, n := range []int{1, 7, 53, 301} {
					for _, prefix := range []int{0, 9} {
						for mi, mask := range masks {
							if hd == 1 && n > 53 {
								continue
							}
							useBias := (n+mi)%2 == 0
							name := fmt.Sprintf("tiles=%v/hd=%d/n=%d/prefix=%d/mask=%+v/bias=%v", tiles, hd, n, prefix, mask, useBias)
							withTiles(tiles[0], tiles[1], func() {
								checkAttender(t, r, name, hd, n, prefix, mask, useBias)
							})
						}
					}
				}
			}
		}
	})
}

func checkAttender(t *testing.T, r *rand.Rand, name string, hd, n, prefix int, mask Mask, useBias bool) {
	t.Helper()
	nk := prefix + n
	ld := 2*hd + 3
	pre := randKV(r, prefix, hd, ld)
	cur := randKV(r, n, hd, ld)
	qld := hd + 5
	q := make([]float32, n*qld)
	for i := range q {
		q[i] = float32(r.NormFloat64())
	}
	// Contiguous keys and values for the reference.
	keys := make([]float32, nk*hd)
	vals := make([]float32, nk*hd)
	for j := 0; j < nk; j++ {
		src, row := pre, j
		if j >= prefix {
			src, row = cur, j-prefix
		}
		copy(keys[j*hd:(j+1)*hd], src[row*ld:])
		copy(vals[j*hd:(j+1)*hd], src[row*ld+hd:])
	}
	var bias ScoreBias
	if useBias {
		bias = &slopeBias{}
	}
	const head = 3
	scale := float32(1 / math.Sqrt(float64(hd)))
	ldc := hd + 2
	full, ctx := guarded(r, n*ldc)
	want := make([]float32, n*hd)
	attentionRef(want, hd, q, qld, n, prefix, keys, vals, nk, hd, scale, mask, bias, head)

	a := GetAttender()
	defer PutAttender(a)
	var pseg KV
	if prefix > 0 {
		pseg = KV{K: pre, V: pre[hd:], LD: ld, N: prefix}
	}
	a.SetKV(hd, pseg, KV{K: cur, V: cur[hd:], LD: ld, N: n})
	a.Attend(ctx, ldc, q, qld, n, prefix, scale, mask, bias, head)
	checkGuards(t, full, name)
	for i := 0; i < n; i++ {
		for p := 0; p < hd; p++ {
			g, w := ctx[i*ldc+p], want[i*hd+p]
			if !(math.Abs(float64(g-w)) <= 2e-6*4+1e-6) {
				t.Fatalf("%s: ctx[%d][%d] = %v, want %v", name, i, p, g, w)
			}
		}
	}
}

// TestAttenderSkipsMaskedBlocks checks, through the tiles the bias hook is
// given, that no score tile is computed that the mask hides from every
// query of it, and that causal and sliding-window attention compute about
// the unmasked part of the scores only.
func TestAttenderSkipsMaskedBlocks(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		const hd, n = 16, 1000
		for _, tc := range []struct {
			mask    Mask
			maxFrac float64 // bound on computed scores / n²
		}{
			{Mask{}, 1.0},
			{Mask{Causal: true}, 0.62},
			{Mask{Window: 128}, 0.5},
		} {
			kv := randKV(r, n, hd, 2*hd)
			q := randKV(r, n, hd, hd)
			ctx := make([]float32, n*hd)
			b := &slopeBias{}
			a := GetAttender()
			a.SetKV(hd, KV{}, KV{K: kv, V: kv[hd:], LD: 2 * hd, N: n})
			a.Attend(ctx, hd, q, hd, n, 0, 0.25, tc.mask, b, 0)
			PutAttender(a)
			computed := 0
			for _, tl := range b.tiles {
				i0, rows, j0, cols := tl[0], tl[1], tl[2], tl[3]
				computed += rows * cols
				seen := false
				for i := i0; i < i0+rows; i++ {
					lo, hi := tc.mask.Range(i, n)
					if lo < j0+cols && hi > j0 {
						seen = true
					}
				}
				if !seen {
					t.Errorf("%+v: tile rows %d+%d keys %d+%d is fully masked but was computed", tc.mask, i0, rows, j0, cols)
				}
			}
			frac := float64(computed) / (n * n)
			t.Logf("%+v: computed %.3f of the n² scores", tc.mask, frac)
			if frac > tc.maxFrac {
				t.Errorf("%+v: computed %.3f of the n² scores, want at most %.2f", tc.mask, frac, tc.maxFrac)
			}
		}
	})
}

// TestAttenderNegInfRow checks that a query whose every score is −Inf gets a
// zero context row rather than NaN, as Softmax does.
func TestAttenderNegInfRow(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		const hd, n = 8, 40
		kv := randKV(r, n, hd, 2*hd)
		q := randKV(r, n, hd, hd)
		ctx := make([]float32, n*hd)
		a := GetAttender()
		defer PutAttender(a)
		withTiles(12, 16, func() {
			a.SetKV(hd, KV{}, KV{K: kv, V: kv[hd:], LD: 2 * hd, N: n})
			a.Attend(ctx, hd, q, hd, n, 0, 1, Mask{}, negInfRow{row: 17}, 0)
		})
		for i := 0; i < n; i++ {
			for p := 0; p < hd; p++ {
				v := ctx[i*hd+p]
				if math.IsNaN(float64(v)) || (i == 17 && v != 0) {
					t.Fatalf("ctx[%d][%d] = %v", i, p, v)
				}
			}
		}
	})
}

type negInfRow struct{ row int }

func (b negInfRow) AddScoreBias(tile []float32, ld, head, i0, rows, j0, cols int) {
	if b.row >= i0 && b.row < i0+rows {
		for c := 0; c < cols; c++ {
			tile[(b.row-i0)*ld+c] = float32(math.Inf(-1))
		}
	}
}

// TestAttenderScratchLinear states the working memory of fused attention for
// an 8,192-token sequence with 64-dimensional heads, and checks that it is
// O(n·d): the keys and values packed once plus fixed-size tiles, far below
// the 8192² floats (268,435,456 bytes) of a materialised score matrix. One
// query at the last position visits every key block, so the tiles reach
// their full size without computing 8192² scores.
func TestAttenderScratchLinear(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		const hd, n = 64, 8192
		kv := randKV(r, n, hd, 2*hd)
		q := randKV(r, 1, hd, hd)
		ctx := make([]float32, hd)
		var a Attender
		a.SetKV(hd, KV{}, KV{K: kv, V: kv[hd:], LD: 2 * hd, N: n})
		a.Attend(ctx, hd, q, hd, 1, n-1, 0.125, Mask{Causal: true}, nil, 0)
		got := a.Bytes()
		kvBytes := 2 * 4 * n * hd
		tiles := 4 * (roundUp(attnBQ, gemmMR)*(attnBK+roundUp(hd, gemmNR)) + gemmMR*hd + 2*attnBQ)
		t.Logf("attention scratch for n=%d, head dim %d: %d bytes per goroutine (keys+values %d, tiles %d); a score matrix would be %d bytes",
			n, hd, got, kvBytes, tiles, 4*n*n)
		if got > kvBytes+tiles {
			t.Errorf("scratch %d bytes, want at most %d (n·d keys and values plus tiles)", got, kvBytes+tiles)
		}
	})
}

// BenchmarkAttentionHead compares fused attention (Attender) with the
// materialised form it replaced (SgemmNT scores, Softmax per row, SgemmNN)
// for one head at minilm's head size, at sequence lengths around the
// encoder's: run both in one go -bench invocation, the machine's load
// moves both alike.
func BenchmarkAttentionHead(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const hd = 32
	for _, n := range []int{32, 128, 512} {
		ld := 3 * hd
		qkv := randKV(r, n, hd, ld)
		ctx := make([]float32, n*hd)
		scale := float32(1 / math.Sqrt(hd))
		b.Run(fmt.Sprintf("fused/n=%d", n), func(b *testing.B) {
			a := GetAttender()
			defer PutAttender(a)
			for range b.N {
				a.SetKV(hd, KV{}, KV{K: qkv[hd:], V: qkv[2*hd:], LD: ld, N: n})
				a.Attend(ctx, hd, qkv, ld, n, 0, scale, Mask{}, nil, 0)
			}
		})
		b.Run(fmt.Sprintf("materialized/n=%d", n), func(b *testing.B) {
			sc := make([]float32, n*n)
			for range b.N {
				SgemmNT(n, n, hd, scale, qkv, ld, qkv[hd:], ld, 0, sc, n)
				for i := 0; i < n; i++ {
					Softmax(sc[i*n : i*n+n])
				}
				SgemmNN(n, hd, n, 1, sc, n, qkv[2*hd:], ld, 0, ctx, hd)
			}
		})
	}
}
