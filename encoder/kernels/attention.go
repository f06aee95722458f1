package kernels

import (
	"math"
	"sync"
)

// Fused attention: one head of scaled dot-product attention computed
// flash-style, tile by tile, so that no n×n score matrix exists. A tile of
// attnBQ queries meets the keys in blocks of at most attnBK; each block's
// scores (attnBQ×attnBK floats) are turned into probabilities with the
// running maximum of their row (online softmax), the context accumulated so
// far is rescaled by exp(old max − new max), and the block's probabilities
// times its values are added to it. A key block that no query of the tile
// may see (causal or sliding-window masks) is never visited: the tile's keys
// are the union of its queries' ranges, which are intervals that move right
// with the query. Working memory is the packed keys and values (n·d each)
// plus one score tile and one context tile, whatever n is.

// The tile sizes are variables only so that the tests can cross block
// boundaries at small sizes. attnBQ is a multiple of gemmMR, attnBK of
// gemmNR.
var (
	attnBQ = 48
	attnBK = 256
)

// Mask restricts the keys a query attends to. The zero Mask is
// bidirectional attention over every key.
type Mask struct {
	// Causal lets the query at position i see keys 0..i only.
	Causal bool
	// Window, when > 0, lets the query at position i see only keys j with
	// |i-j| <= Window/2 (ModernBERT's local attention of window Window).
	Window int
}

// Range returns the half-open range [lo, hi) of keys the query at position
// i sees among n keys at positions 0..n-1. Both bounds are non-decreasing
// in i, which the fused attention relies on to skip masked blocks.
func (m Mask) Range(i, n int) (lo, hi int) {
	lo, hi = 0, n
	if m.Causal {
		hi = min(hi, i+1)
	}
	if m.Window > 0 {
		h := m.Window / 2
		lo = max(lo, i-h)
		hi = min(hi, i+h+1)
	}
	return lo, hi
}

// ScoreBias adds a bias to a tile of the (already scaled) attention scores
// of one head, before the mask and the softmax: relative position biases.
// The tile holds rows×cols scores, row r (query position i0+r) starting at
// tile[r*ld], column c being key position j0+c. Implementations must be
// safe for concurrent use.
type ScoreBias interface {
	AddScoreBias(tile []float32, ld, head, i0, rows, j0, cols int)
}

// KV is one segment of the keys and values of a head: N rows, key row j
// at K[j*LD:], its value row at V[j*LD:], HeadDim floats each. K and V may
// point into the same fused QKV buffer.
type KV struct {
	K, V []float32
	LD   int
	N    int
}

// Attender is the working memory of fused attention for one goroutine.
// SetKV loads the keys and values of one head; Attend then computes the
// context of any number of query heads against them (grouped-query heads
// share one SetKV). The zero Attender is ready to use; it grows its buffers
// as needed and keeps them, so steady state does not allocate. An Attender
// is used by one goroutine at a time; GetAttender and PutAttender keep a
// free list of them.
type Attender struct {
	hd, nk int
	// kp and vp hold the keys and values: on the fast path in the panel
	// layouts of the micro-kernel (keys: 16-key panels of hd rows; values:
	// 16-dimension panels of nk rows), on the portable path as plain nk×hd
	// matrices.
	kp, vp []float32
	s      []float32 // score tile, rows rounded up to gemmMR, attnBK wide
	o      []float32 // context tile, rows × roundUp(hd, gemmNR)
	qpad   []float32 // the last, partial row panel of queries
	m, l   []float32 // running row maximum and row sum of a tile
	fast   bool
}

var (
	attenderMu   sync.Mutex
	attenderFree []*Attender
)

// GetAttender returns an Attender from a free list that, unlike sync.Pool,
// the garbage collector never empties; PutAttender returns it.
func GetAttender() *Attender {
	attenderMu.Lock()
	defer attenderMu.Unlock()
	if n := len(attenderFree); n > 0 {
		a := attenderFree[n-1]
		attenderFree = attenderFree[:n-1]
		return a
	}
	return new(Attender)
}

// PutAttender returns a to the free list of GetAttender.
func PutAttender(a *Attender) {
	attenderMu.Lock()
	attenderFree = append(attenderFree, a)
	attenderMu.Unlock()
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Bytes reports the memory a holds: the working memory of fused attention
// is this, per goroutine, instead of an n×n score matrix.
func (a *Attender) Bytes() int {
	return 4 * (cap(a.kp) + cap(a.vp) + cap(a.s) + cap(a.o) + cap(a.qpad) + cap(a.m) + cap(a.l))
}

// SetKV loads the keys and values of one head, headDim floats per row: the
// rows of prefix (a cached prefix; N == 0 for none) followed by those of
// cur. Key positions run 0..prefix.N+cur.N-1 in that order.
func (a *Attender) SetKV(headDim int, prefix, cur KV) {
	if headDim <= 0 {
		panic("kernels: Attender.SetKV head dimension must be positive")
	}
	checkKV(prefix, headDim)
	checkKV(cur, headDim)
	nk := prefix.N + cur.N
	a.hd, a.nk, a.fast = headDim, nk, hasAVX2FMA
	if !a.fast {
		a.kp = grow(a.kp, nk*headDim)
		a.vp = grow(a.vp, nk*headDim)
		j := 0
		for _, seg := range [2]KV{prefix, cur} {
			for r := 0; r < seg.N; r++ {
				copy(a.kp[j*headDim:(j+1)*headDim], seg.K[r*seg.LD:])
				copy(a.vp[j*headDim:(j+1)*headDim], seg.V[r*seg.LD:])
				j++
			}
		}
		return
	}
	a.kp = grow(a.kp, roundUp(nk, gemmNR)*headDim)
	hdp := roundUp(headDim, gemmNR)
	a.vp = grow(a.vp, hdp*nk)
	// Key j, dimension p → panel j/16, row p, lane j%16; keys past nk are
	// zero so that their scores are 0, finite, and then ignored.
	if tail := nk % gemmNR; tail != 0 {
		clear(a.kp[(nk/gemmNR)*gemmNR*headDim:])
	}
	// Without a prefix, and with the head in one k block, the key panels
	// are exactly packBT's layout, which packs four keys per pass.
	packed := prefix.N == 0 && headDim <= gemmKC
	if packed {
		packBT(a.kp, cur.K, cur.LD, nk, headDim)
	}
	j := 0
	for _, seg := range [2]KV{prefix, cur} {
		for r := 0; r < seg.N; r++ {
			if !packed {
				pan := a.kp[(j/gemmNR)*gemmNR*headDim:]
				lane := j % gemmNR
				for p, v := range seg.K[r*seg.LD : r*seg.LD+headDim] {
					pan[p*gemmNR+lane] = v
				}
			}
			// Value j, dimension c → panel c/16, row j, lane c%16.
			vr := seg.V[r*seg.LD : r*seg.LD+headDim]
			for c0 := 0; c0 < hdp; c0 += gemmNR {
				d := a.vp[c0*nk+j*gemmNR : c0*nk+(j+1)*gemmNR]
				w := min(gemmNR, headDim-c0)
				copy(d, vr[c0:c0+w])
				clear(d[w:])
			}
			j++
		}
	}
}

func checkKV(s KV, hd int) {
	if s.N < 0 || (s.N > 0 && (s.LD < hd || len(s.K) < (s.N-1)*s.LD+hd || len(s.V) < (s.N-1)*s.LD+hd)) {
		panic("kernels: Attender.SetKV buffer too small")
	}
}

// Attend writes into ctx (n rows, stride ldc) the attention context of the
// n queries of q (stride ldq, HeadDim floats each) over the keys and values
// of the last SetKV: row i is Σ_j softmax_j(scale·q_i·k_j + bias) v_j over
// the keys j that mask lets query position pos0+i see (pos0 is the number of
// prefix keys for queries that follow a cached prefix). bias, when non-nil,
// is called with head for each score tile. A query that sees no key, or only
// scores of −Inf, gets a zero row.
func (a *Attender) Attend(ctx []float32, ldc int, q []float32, ldq, n, pos0 int, scale float32, mask Mask, bias ScoreBias, head int) {
	hd, nk := a.hd, a.nk
	if n <= 0 {
		return
	}
	if ldq < hd || ldc < hd || len(q) < (n-1)*ldq+hd || len(ctx) < (n-1)*ldc+hd || pos0 < 0 || pos0+n > nk {
		panic("kernels: Attender.Attend buffer or position out of range")
	}
	if a.fast != hasAVX2FMA {
		panic("kernels: Attender.Attend after a dispatch change without SetKV")
	}
	bq, bk := attnBQ, attnBK
	hdp := roundUp(hd, gemmNR)
	lds := bk
	a.s = grow(a.s, roundUp(bq, gemmMR)*lds)
	a.o = grow(a.o, roundUp(bq, gemmMR)*hdp)
	a.qpad = grow(a.qpad, gemmMR*hd)
	a.m = grow(a.m, bq)
	a.l = grow(a.l, bq)
	negInf := float32(math.Inf(-1))
	for i0 := 0; i0 < n; i0 += bq {
		rows := min(bq, n-i0)
		ulo, _ := mask.Range(pos0+i0, nk)
		_, uhi := mask.Range(pos0+i0+rows-1, nk)
		o := a.o[:roundUp(rows, gemmMR)*hdp]
		clear(o)
		for r := 0; r < rows; r++ {
			a.m[r], a.l[r] = negInf, 0
		}
		qt := q[i0*ldq:]
		first := ulo / gemmNR * gemmNR
		// A tile whose keys fit one block needs no online softmax: its rows
		// are normalised with Softmax before they weight the values, which
		// makes the result the same bits as materialised attention
		// (every sequence of up to attnBK tokens, and sliding windows).
		single := uhi-first <= bk
		for j0 := first; j0 < uhi; j0 += bk {
			bw := min(bk, uhi-j0)
			a.scores(qt, ldq, rows, j0, bw, scale)
			if bias != nil {
				bias.AddScoreBias(a.s, lds, head, pos0+i0, rows, j0, bw)
			}
			for r := 0; r < rows; r++ {
				if single {
					a.softmaxSingle(r, pos0+i0+r, j0, bw, mask)
				} else {
					a.softmaxRow(r, pos0+i0+r, j0, bw, mask, hdp)
				}
			}
			a.accumulate(rows, j0, bw, hdp)
		}
		for r := 0; r < rows; r++ {
			dst := ctx[(i0+r)*ldc : (i0+r)*ldc+hd]
			copy(dst, o[r*hdp:r*hdp+hd])
			inv := float32(0)
			if a.l[r] > 0 {
				inv = 1 / a.l[r]
			}
			vscale(dst, inv)
		}
	}
}

// scores sets the score tile to scale·Q·Kᵀ for the rows queries of qt and
// keys j0..j0+bw-1 (j0 a multiple of gemmNR).
func (a *Attender) scores(qt []float32, ldq, rows, j0, bw int, scale float32) {
	hd, lds := a.hd, attnBK
	if !a.fast {
		SgemmNT(rows, bw, hd, scale, qt, ldq, a.kp[j0*hd:], hd, 0, a.s, lds)
		return
	}
	full := rows / gemmMR * gemmMR
	if full < rows {
		for r := 0; r < gemmMR; r++ {
			d := a.qpad[r*hd : r*hd+hd]
			if full+r < rows {
				copy(d, qt[(full+r)*ldq:])
			} else {
				clear(d)
			}
		}
	}
	for jp := j0; jp < j0+bw; jp += gemmNR {
		pan := &a.kp[(jp/gemmNR)*gemmNR*hd]
		for ir := 0; ir < full; ir += gemmMR {
			sgemm6x16AVX2(hd, &qt[ir*ldq], ldq, pan, &a.s[ir*lds+jp-j0], lds, scale, 0, nil)
		}
		if full < rows {
			sgemm6x16AVX2(hd, &a.qpad[0], hd, pan, &a.s[full*lds+jp-j0], lds, scale, 0, nil)
		}
	}
}

// tileRow returns row r of the score tile (query position qi, keys
// j0..j0+bw-1) and the range [lo, hi) of it that mask lets the query see.
// A row that sees none of these keys is cleared, and ok is false.
func (a *Attender) tileRow(r, qi, j0, bw int, mask Mask) (row []float32, lo, hi int, ok bool) {
	row = a.s[r*attnBK : r*attnBK+bw]
	lo, hi = mask.Range(qi, a.nk)
	lo, hi = max(lo, j0)-j0, min(hi, j0+bw)-j0
	if lo >= hi {
		clear(row)
		return row, 0, 0, false
	}
	return row, lo, hi, true
}

// softmaxSingle turns row r of the score tile (query position qi, keys
// j0..j0+bw-1, all the keys it may see) into its probabilities, exactly as
// materialised attention does: Softmax over the unmasked keys, zero
// elsewhere, and a row sum of 1 for the final division.
func (a *Attender) softmaxSingle(r, qi, j0, bw int, mask Mask) {
	row, lo, hi, ok := a.tileRow(r, qi, j0, bw, mask)
	if !ok {
		return
	}
	clear(row[:lo])
	Softmax(row[lo:hi])
	clear(row[hi:])
	a.l[r] = 1
}

// softmaxRow turns row r of the score tile (query position qi, keys
// j0..j0+bw-1) into unnormalised probabilities against the row's running
// maximum, zero outside the mask, rescaling the row's context and sum when
// the maximum grows.
func (a *Attender) softmaxRow(r, qi, j0, bw int, mask Mask, hdp int) {
	row, lo, hi, ok := a.tileRow(r, qi, j0, bw, mask)
	if !ok {
		return
	}
	seg := row[lo:hi]
	mNew := max(a.m[r], vmax(seg))
	if math.IsInf(float64(mNew), -1) {
		clear(row)
		return
	}
	sum := vexpSum(seg, mNew)
	clear(row[:lo])
	clear(row[hi:])
	if a.m[r] != mNew {
		alpha := float32(math.Exp(float64(a.m[r] - mNew)))
		a.l[r] *= alpha
		vscale(a.o[r*hdp:r*hdp+a.hd], alpha)
		a.m[r] = mNew
	}
	a.l[r] += sum
}

// accumulate adds the probability tile times values j0..j0+bw-1 to the
// context tile.
func (a *Attender) accumulate(rows, j0, bw, hdp int) {
	hd, nk, lds := a.hd, a.nk, attnBK
	if !a.fast {
		SgemmNN(rows, hd, bw, 1, a.s, lds, a.vp[j0*hd:], hd, 1, a.o, hdp)
		return
	}
	mr := roundUp(rows, gemmMR)
	for c0 := 0; c0 < hdp; c0 += gemmNR {
		pan := &a.vp[c0*nk+j0*gemmNR]
		for ir := 0; ir < mr; ir += gemmMR {
			sgemm6x16AVX2(bw, &a.s[ir*lds], lds, pan, &a.o[ir*hdp+c0], hdp, 1, 1, nil)
		}
	}
}

// vmax returns the largest element of x (len(x) > 0).
func vmax(x []float32) float32 {
	if hasAVX2FMA {
		return maxAVX2(&x[0], len(x))
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// vexpSum replaces x[i] with exp(x[i]-shift) and returns their sum
// (len(x) > 0).
func vexpSum(x []float32, shift float32) float32 {
	if hasAVX2FMA {
		return expSumAVX2(&x[0], len(x), shift)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - shift)))
		x[i] = e
		sum += float64(e)
	}
	return float32(sum)
}

// vscale multiplies x by s.
func vscale(x []float32, s float32) {
	if hasAVX2FMA && len(x) > 0 {
		scaleAVX2(&x[0], len(x), s)
		return
	}
	for i := range x {
		x[i] *= s
	}
}

// attentionRef is the reference of Attender.Attend: the definition,
// materialising each query's full row of scores, in float64. It is the
// ground truth of the differential tests.
func attentionRef(ctx []float32, ldc int, q []float32, ldq, n, pos0 int, keys, vals []float32, nk, hd int, scale float32, mask Mask, bias ScoreBias, head int) {
	row := make([]float32, nk)
	for i := 0; i < n; i++ {
		for j := 0; j < nk; j++ {
			s := 0.0
			for p := 0; p < hd; p++ {
				s += float64(q[i*ldq+p]) * float64(keys[j*hd+p])
			}
			row[j] = float32(s) * scale
		}
		if bias != nil {
			bias.AddScoreBias(row, nk, head, pos0+i, 1, 0, nk)
		}
		lo, hi := mask.Range(pos0+i, nk)
		out := ctx[i*ldc : i*ldc+hd]
		clear(out)
		if lo >= hi {
			continue
		}
		softmaxRef(row[lo:hi])
		for p := 0; p < hd; p++ {
			s := 0.0
			for j := lo; j < hi; j++ {
				s += float64(row[j]) * float64(vals[j*hd+p])
			}
			out[p] = float32(s)
		}
	}
}
