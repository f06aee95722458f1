package explain

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// pca projects the final state of every token of every text onto the two
// principal axes of all of them, through the SVD of the centred matrix.
// Each axis's sign is fixed so that its largest component is positive,
// which makes the map deterministic.
func pca(texts []Text, H int) (PCA, error) {
	var rows int
	for i := range texts {
		rows += len(texts[i].InputIDs)
	}
	X := mat.NewDense(rows, H, nil)
	var pts []Point
	r := 0
	for i := range texts {
		final := texts[i].states[len(texts[i].states)-1]
		for t := range texts[i].InputIDs {
			for j := 0; j < H; j++ {
				X.Set(r, j, float64(final[t*H+j]))
			}
			pts = append(pts, Point{Text: i, Index: t, Token: texts[i].Tokens[t]})
			r++
		}
	}
	for j := 0; j < H; j++ {
		col := mat.Col(nil, j, X)
		var mean float64
		for _, v := range col {
			mean += v
		}
		mean /= float64(rows)
		for i := range col {
			X.Set(i, j, col[i]-mean)
		}
	}
	var out PCA
	var svd mat.SVD
	if !svd.Factorize(X, mat.SVDThin) {
		return out, fmt.Errorf("explain: PCA: SVD of the %d×%d token matrix did not converge", rows, H)
	}
	sv := svd.Values(nil)
	var V mat.Dense
	svd.VTo(&V)
	var total float64
	for _, s := range sv {
		total += s * s
	}
	axes := min(2, len(sv))
	for a := 0; a < axes; a++ {
		if total > 0 {
			out.Explained[a] = sv[a] * sv[a] / total
		}
		v := mat.Col(nil, a, &V)
		big := 0
		for j := range v {
			if math.Abs(v[j]) > math.Abs(v[big]) {
				big = j
			}
		}
		if v[big] < 0 {
			for j := range v {
				v[j] = -v[j]
			}
		}
		for i := range pts {
			var s float64
			for j := 0; j < H; j++ {
				s += X.At(i, j) * v[j]
			}
			if a == 0 {
				pts[i].X = s
			} else {
				pts[i].Y = s
			}
		}
	}
	out.Points = pts
	return out, nil
}
