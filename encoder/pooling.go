package encoder

import (
	"math"
	"slices"
	"strings"
)

// poolMode is one pooling strategy of sentence-transformers' Pooling module.
type poolMode uint8

// The pooling modes, in the order sentence-transformers concatenates them
// when several are enabled.
const (
	poolCLS poolMode = iota
	poolMax
	poolMean
	poolMeanSqrtLen
	poolWeightedMean
	poolLastToken
)

var allPoolModes = []poolMode{poolCLS, poolMax, poolMean, poolMeanSqrtLen, poolWeightedMean, poolLastToken}

// String returns the mode's name in the newer pooling_mode form.
func (m poolMode) String() string {
	return [...]string{"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"}[m]
}

// classicKey is the mode's boolean key in the classic Pooling config.
func (m poolMode) classicKey() string {
	return [...]string{"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_tokens",
		"pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}[m]
}

func poolModeByName(s string) (poolMode, bool) {
	switch s {
	case "cls", "cls_token":
		return poolCLS, true
	case "max", "max_tokens":
		return poolMax, true
	case "mean", "mean_tokens":
		return poolMean, true
	case "mean_sqrt_len_tokens", "mean_sqrt_len":
		return poolMeanSqrtLen, true
	case "weightedmean", "weightedmean_tokens":
		return poolWeightedMean, true
	case "lasttoken":
		return poolLastToken, true
	}
	return 0, false
}

func poolModeNames() []string {
	n := make([]string, len(allPoolModes))
	for i, m := range allPoolModes {
		n[i] = m.String()
	}
	return n
}

// canonicalModes sorts modes into concatenation order and drops duplicates.
func canonicalModes(ms []poolMode) []poolMode {
	slices.Sort(ms)
	return slices.Compact(ms)
}

// poolSpec is a parsed Pooling module configuration.
type poolSpec struct {
	modes         []poolMode
	dim           int // declared word embedding dimension, 0 if absent
	includePrompt bool
}

// String names the modes joined by "+", e.g. "mean" or "cls+mean".
func (p poolSpec) String() string {
	n := make([]string, len(p.modes))
	for i, m := range p.modes {
		n[i] = m.String()
	}
	return strings.Join(n, "+")
}

// pool writes the pooled vector of one sequence's n token embeddings tok
// (n×h, n ≥ 1) into dst (len(modes)×h). acc is scratch of h float64s: sums
// are accumulated in float64 so that the result does not drift with sequence
// length; this is O(tokens×h), negligible next to the encoder.
//
// The first skip tokens (0 ≤ skip < n) are masked out as
// sentence-transformers masks prompt tokens when include_prompt is false:
// max and the means ignore them (weighted mean keeps the position weights
// of the whole sequence), CLS and last-token pooling do not look at the
// mask.
func (p *poolSpec) pool(dst, tok []float32, n, h, skip int, acc []float64) {
	for mi, m := range p.modes {
		out := dst[mi*h : mi*h+h]
		switch m {
		case poolCLS:
			copy(out, tok[:h])
		case poolLastToken:
			copy(out, tok[(n-1)*h:n*h])
		case poolMax:
			copy(out, tok[skip*h:skip*h+h])
			for t := skip + 1; t < n; t++ {
				for j, v := range tok[t*h : t*h+h] {
					if v > out[j] {
						out[j] = v
					}
				}
			}
		default:
			clear(acc)
			wsum := 0.0
			for t := skip; t < n; t++ {
				w := 1.0
				if m == poolWeightedMean {
					// sentence-transformers weighs token t (0-based) by t+1.
					w = float64(t + 1)
				}
				wsum += w
				for j, v := range tok[t*h : t*h+h] {
					acc[j] += w * float64(v)
				}
			}
			div := wsum
			if m == poolMeanSqrtLen {
				div = math.Sqrt(float64(n - skip))
			}
			for j := range out {
				out[j] = float32(acc[j] / div)
			}
		}
	}
}

// Normalize scales v to unit L2 norm as torch.nn.functional.normalize does
// (dividing by max(‖v‖, 1e-12)), with the sum of squares and the division
// in float64. It is the one L2 normalization of embedpipe: the Normalize
// module here and the renormalization after a Matryoshka truncation (package
// encoder/embed) both use it, so every path gives the same bits.
func Normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	n := math.Max(math.Sqrt(ss), 1e-12)
	for i, x := range v {
		v[i] = float32(float64(x) / n)
	}
}
