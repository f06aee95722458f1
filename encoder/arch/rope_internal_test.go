package arch

import (
	"errors"
	"math"
	"testing"
)

func TestRotaryAngles(t *testing.T) {
	const hd, maxLen, theta = 8, 300, 10000.0
	r := NewRotary(hd, maxLen, theta)
	for _, p := range []int{0, 1, 17, 299} {
		for i := 0; i < hd/2; i++ {
			a := float64(p) * math.Pow(theta, -float64(2*i)/hd)
			// float32 inverse frequencies and products: within a few ulps
			// of the float64 angle.
			tol := 1e-6 + 4e-7*math.Abs(a)
			if d := math.Abs(float64(r.cos[p*hd/2+i]) - math.Cos(a)); d > tol {
				t.Errorf("cos at position %d, pair %d: off by %g", p, i, d)
			}
			if d := math.Abs(float64(r.sin[p*hd/2+i]) - math.Sin(a)); d > tol {
				t.Errorf("sin at position %d, pair %d: off by %g", p, i, d)
			}
		}
	}
}

func TestRotaryTransformQK(t *testing.T) {
	// Two tokens, two query heads and one key/value head of width 4, rows
	// laid out as in the fused QKV buffer: q (8) | k (4) | v (4).
	const hd, heads, kv, ld, n = 4, 2, 1, 16, 2
	buf := make([]float32, n*ld)
	for i := range buf {
		buf[i] = float32(i%7) - 3
	}
	orig := append([]float32(nil), buf...)
	r := NewRotary(hd, 8, 10000)
	r.TransformQK(buf, buf[heads*hd:], ld, n, heads, kv, hd)
	// Position 0 is the identity rotation; values are never touched.
	for j := 0; j < ld; j++ {
		if buf[j] != orig[j] {
			t.Fatalf("token 0 changed at %d: %v → %v", j, orig[j], buf[j])
		}
	}
	for j := ld - kv*hd; j < ld; j++ {
		if buf[ld+j] != orig[ld+j] {
			t.Fatalf("value of token 1 changed at %d", j)
		}
	}
	// Token 1: pair i of each head rotated by 1·10000^(−2i/4).
	for h := 0; h < heads+kv; h++ {
		for i := 0; i < hd/2; i++ {
			a := math.Pow(10000, -float64(2*i)/hd)
			x, y := float64(orig[ld+h*hd+i]), float64(orig[ld+h*hd+i+hd/2])
			wx, wy := x*math.Cos(a)-y*math.Sin(a), y*math.Cos(a)+x*math.Sin(a)
			gx, gy := float64(buf[ld+h*hd+i]), float64(buf[ld+h*hd+i+hd/2])
			if math.Abs(gx-wx) > 1e-5 || math.Abs(gy-wy) > 1e-5 {
				t.Fatalf("head %d pair %d: got (%v, %v), want (%v, %v)", h, i, gx, gy, wx, wy)
			}
		}
	}
	// With QK-norm, every head of every token has RMS 1 after the rotation
	// (unit gammas), rotations keeping norms.
	one := []float32{1, 1, 1, 1}
	r.QNorm = &Norm{Kind: RMSNorm, Gamma: one, Dim: hd, Eps: 1e-6}
	r.KNorm = r.QNorm
	copy(buf, orig)
	r.TransformQK(buf, buf[heads*hd:], ld, n, heads, kv, hd)
	for tok := 0; tok < n; tok++ {
		for h := 0; h < heads+kv; h++ {
			ss := 0.0
			for _, v := range buf[tok*ld+h*hd : tok*ld+h*hd+hd] {
				ss += float64(v) * float64(v)
			}
			if rms := math.Sqrt(ss / hd); math.Abs(rms-1) > 1e-4 {
				t.Errorf("token %d head %d: RMS %v after QK-norm", tok, h, rms)
			}
		}
	}
}

func TestRopeTheta(t *testing.T) {
	cases := []struct {
		json, layer string
		want        float64
		err         error
	}{
		{`{"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}`, "", 1e6, nil},
		{`{"rope_parameters": {"full_attention": {"rope_theta": 160000}, "sliding_attention": {"rope_theta": 10000}}}`, "sliding_attention", 10000, nil},
		{`{"rope_parameters": {"rope_theta": 5e5}}`, "full_attention", 5e5, nil},
		{`{"rope_theta": 20000}`, "", 20000, nil},
		{`{"global_rope_theta": 30000}`, "full_attention", 30000, nil},
		{`{}`, "", 10000, nil},
		{`{"rope_theta": 20000, "rope_scaling": null}`, "", 20000, nil},
		{`{"rope_theta": 20000, "rope_scaling": {"type": "linear", "factor": 2}}`, "", 0, ErrUnsupported},
		{`{"rope_theta": 20000, "rope_scaling": {"rope_type": "yarn", "factor": 4}}`, "", 0, ErrUnsupported},
		{`{"rope_theta": 20000, "rope_scaling": 7}`, "", 0, ErrConfig},
		{`{"rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn"}}`, "", 0, ErrUnsupported},
		{`{"rope_parameters": {"rope_theta": 1e6, "partial_rotary_factor": 0.5}}`, "", 0, ErrUnsupported},
		{`{"rope_parameters": {"rope_theta": -1}}`, "", 0, ErrConfig},
		{`{"rope_parameters": {"full_attention": 3}}`, "full_attention", 0, ErrConfig},
	}
	for _, c := range cases {
		cfg, err := ParseConfig("config.json", []byte(c.json))
		if err != nil {
			t.Fatal(err)
		}
		legacy := "rope_theta"
		if c.layer == "full_attention" {
			legacy = "global_rope_theta"
		}
		got, err := ropeTheta(cfg, c.layer, legacy, 10000)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: err = %v, want %v", c.json, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s (%q): %v, %v; want %v", c.json, c.layer, got, err, c.want)
		}
	}
}

func TestModernBERTLayerTypes(t *testing.T) {
	for js, want := range map[string]error{
		`{"layer_types": ["full_attention", "sliding_attention"]}`: nil,
		`{"layer_types": ["full_attention"]}`:                      ErrConfig,
		`{"layer_types": ["full_attention", "chunked_attention"]}`: ErrUnsupported,
	} {
		cfg, _ := ParseConfig("config.json", []byte(js))
		full, err := layerKinds(cfg, 2, "sliding_attention")
		if !errors.Is(err, want) || (want == nil && (len(full) != 2 || !full[0] || full[1])) {
			t.Errorf("%s: %v, %v", js, full, err)
		}
	}
}
