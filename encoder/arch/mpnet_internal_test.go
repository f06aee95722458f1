package arch

import "testing"

func TestMPNetBucket(t *testing.T) {
	// 32 buckets, max distance 128: 16 per direction, exact below 8, then
	// 8 + floor(log(n/8)/log(16)·8), at most 15; keys after the query use
	// the upper half.
	cases := map[int]int{
		0: 0, -1: 1, -7: 7, -8: 8, -15: 9, -16: 10, -31: 11, -32: 12, -127: 15, -128: 15, -5000: 15,
		1: 17, 7: 23, 8: 24, 16: 26, 5000: 31,
	}
	for rel, want := range cases {
		if got := mpnetBucket(rel, 32, 128); got != want {
			t.Errorf("mpnetBucket(%d) = %d, want %d", rel, got, want)
		}
	}
	// Buckets never shrink as the distance grows, in either direction.
	for _, sign := range []int{-1, 1} {
		prev := -1
		for d := 0; d < 600; d++ {
			b := mpnetBucket(sign*d, 32, 128)
			if b < prev || b < 0 || b >= 32 {
				t.Fatalf("mpnetBucket(%d) = %d after %d", sign*d, b, prev)
			}
			prev = b
		}
	}
}

func TestRelativeBias(t *testing.T) {
	const buckets, heads, maxLen, n = 32, 3, 40, 37
	table := make([]float32, buckets*heads)
	for i := range table {
		table[i] = float32(i) * 0.25
	}
	r := newRelativeBias(table, buckets, heads, maxLen)
	// The whole n×n matrix, and interior tiles (fused attention's calls)
	// with a row stride wider than the tile.
	for _, tc := range []struct{ i0, rows, j0, cols, ld int }{
		{0, n, 0, n, n},
		{5, 7, 16, 20, 24},
		{30, 7, 0, 9, 16},
	} {
		for h := 0; h < heads; h++ {
			sc := make([]float32, tc.rows*tc.ld)
			for i := range sc {
				sc[i] = 1
			}
			r.AddScoreBias(sc, tc.ld, h, tc.i0, tc.rows, tc.j0, tc.cols)
			for i := 0; i < tc.rows; i++ {
				for j := 0; j < tc.ld; j++ {
					want := float32(1)
					if j < tc.cols {
						want += table[mpnetBucket(tc.j0+j-tc.i0-i, buckets, 128)*heads+h]
					}
					if sc[i*tc.ld+j] != want {
						t.Fatalf("tile %+v, head %d, query %d, key %d: %v, want %v", tc, h, tc.i0+i, tc.j0+j, sc[i*tc.ld+j], want)
					}
				}
			}
		}
	}
}
