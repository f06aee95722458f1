package safetensors

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

// TestF16Known checks hand-computed binary16 values, including both zero
// signs, the subnormal range, the largest finite value, infinities and NaNs
// whose payloads must survive.
func TestF16Known(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want uint32 // float32 bits
	}{
		{0x0000, 0x00000000},                       // +0
		{0x8000, 0x80000000},                       // -0
		{0x0001, math.Float32bits(0x1p-24)},        // smallest subnormal, 5.96e-8
		{0x8001, math.Float32bits(-0x1p-24)},       // its negative
		{0x03ff, math.Float32bits(1023 * 0x1p-24)}, // largest subnormal
		{0x0200, math.Float32bits(0x1p-15)},        // a subnormal power of two
		{0x0400, math.Float32bits(0x1p-14)},        // smallest normal
		{0x3c00, math.Float32bits(1)},
		{0xc000, math.Float32bits(-2)},
		{0x3555, math.Float32bits(0.333251953125)}, // nearest binary16 to 1/3
		{0x7bff, math.Float32bits(65504)},          // largest finite
		{0x7c00, 0x7f800000},                       // +Inf
		{0xfc00, 0xff800000},                       // -Inf
		{0x7e00, 0x7fc00000},                       // quiet NaN
		{0x7c01, 0x7f802000},                       // signalling NaN, payload 1
		{0xfe01, 0xffc02000},                       // negative NaN with payload
	} {
		if got := math.Float32bits(F16ToF32(tc.h)); got != tc.want {
			t.Errorf("F16ToF32(%#04x) = %#08x (%g), want %#08x (%g)", tc.h, got, math.Float32frombits(got), tc.want, math.Float32frombits(tc.want))
		}
	}
}

// TestF16Exhaustive compares every binary16 pattern with an independent
// float64 evaluation of the IEEE 754 definition.
func TestF16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp := int(h>>10) & 0x1f
		mant := float64(h & 0x3ff)
		got := F16ToF32(h)
		var want float64
		switch exp {
		case 0x1f:
			if mant == 0 {
				want = math.Inf(int(sign))
			} else {
				if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (sign < 0) {
					t.Fatalf("F16ToF32(%#04x) = %g, want a NaN with sign %g", h, got, sign)
				}
				continue
			}
		case 0:
			want = sign * math.Ldexp(mant, -24)
		default:
			want = sign * math.Ldexp(1024+mant, exp-25)
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("F16ToF32(%#04x) = %g, want %g", h, got, want)
		}
	}
}

func TestBF16Known(t *testing.T) {
	for _, tc := range []struct {
		b    uint16
		want uint32
	}{
		{0x0000, 0x00000000},
		{0x8000, 0x80000000},
		{0x3f80, math.Float32bits(1)},
		{0x4049, math.Float32bits(3.140625)},
		{0xbebb, math.Float32bits(-0.365234375)},
		{0x0001, 0x00010000}, // subnormal, 9.18e-41
		{0x0080, math.Float32bits(0x1p-126)},
		{0x7f7f, math.Float32bits(0x1.fep127)}, // largest finite
		{0x7f80, 0x7f800000},                   // +Inf
		{0xff80, 0xff800000},                   // -Inf
		{0x7fc1, 0x7fc10000},                   // NaN with payload
		{0x7f81, 0x7f810000},                   // signalling NaN
	} {
		if got := math.Float32bits(BF16ToF32(tc.b)); got != tc.want {
			t.Errorf("BF16ToF32(%#04x) = %#08x, want %#08x", tc.b, got, tc.want)
		}
	}
}

// TestFloat32Conversions reads the same bit patterns through files of each
// dtype, so the little-endian decoding and the per-dtype dispatch are
// covered, not just the scalar functions.
func TestFloat32Conversions(t *testing.T) {
	data := build(nil,
		entry{"f16", F16, []int{2, 4}, u16Bytes(0x3c00, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x7c01, 0x03ff)},
		entry{"bf16", BF16, []int{5}, u16Bytes(0x3f80, 0x0001, 0x7f80, 0x7fc1, 0xbebb)},
		entry{"f32", F32, []int{3}, f32Bytes(1.5, float32(math.Inf(-1)), 0x1p-149)},
	)
	c, err := Open(writeFile(t, "m.safetensors", data))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check := func(name string, want ...uint32) {
		t.Helper()
		got, err := c.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		for i := range got {
			if math.Float32bits(got[i]) != want[i] {
				t.Errorf("%s[%d] = %#08x, want %#08x", name, i, math.Float32bits(got[i]), want[i])
			}
		}
	}
	check("f16", 0x3f800000, 0x33800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x80000000, 0x7f802000, math.Float32bits(1023*0x1p-24))
	check("bf16", 0x3f800000, 0x00010000, 0x7f800000, 0x7fc10000, 0xbebb0000)
	check("f32", math.Float32bits(1.5), 0xff800000, 0x00000001)
	// The portable decoding loop, used on big-endian machines, must agree
	// with the native-order copy.
	native := nativeLittleEndian
	nativeLittleEndian = false
	check("f32", math.Float32bits(1.5), 0xff800000, 0x00000001)
	nativeLittleEndian = native

	dst := make([]float32, 5)
	if err := c.Float32To(dst, "bf16", 5); err != nil || dst[0] != 1 {
		t.Errorf("Float32To = %v, %v", dst, err)
	}
}

func TestFloat32Errors(t *testing.T) {
	data := build(nil,
		entry{"w", F32, []int{2, 3}, make([]byte, 24)},
		entry{"ids", I64, []int{2}, make([]byte, 16)},
		entry{"mask", Bool, []int{3}, []byte{1, 0, 1}},
	)
	path := writeFile(t, "m.safetensors", data)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Float32("nope")
	if !errors.Is(err, ErrTensorNotFound) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), path) {
		t.Errorf("missing tensor: %v", err)
	}
	_, err = c.Float32("w", 3, 2)
	if !errors.Is(err, ErrShape) {
		t.Errorf("wrong shape: %v does not wrap ErrShape", err)
	}
	for _, frag := range []string{path, `tensor "w"`, "[2 3]", "[3 2]"} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("wrong shape: error %v lacks %q", err, frag)
		}
	}
	for _, name := range []string{"ids", "mask"} {
		_, err = c.Float32(name)
		if !errors.Is(err, ErrDType) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v does not wrap ErrDType", name, err)
		}
		if _, ok := c.Info(name); !ok {
			t.Errorf("Info(%s) missing", name)
		}
	}
	if err := c.Float32To(make([]float32, 5), "w"); !errors.Is(err, ErrShape) {
		t.Errorf("short destination: %v", err)
	}
	// Info hands out a copy, so callers cannot corrupt the checkpoint.
	info, _ := c.Info("w")
	info.Shape[0] = 99
	if _, err := c.Float32("w", 2, 3); err != nil {
		t.Errorf("after mutating an Info copy: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Float32("w"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := c.Raw("w"); !errors.Is(err, ErrClosed) {
		t.Errorf("Raw after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestTruncatedWhileMapped truncates a mapped file behind the checkpoint's
// back: reading the lost pages must fail with ErrIO, not kill the process.
func TestTruncatedWhileMapped(t *testing.T) {
	if !mmapSupported {
		t.Skip("files are read, not mapped, on this platform")
	}
	const n = 1 << 16
	path := writeFile(t, "m.safetensors", build(nil, entry{"w", F32, []int{n}, make([]byte, 4*n)}))
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := os.Truncate(path, 64); err != nil {
		t.Fatal(err)
	}
	_, err = c.Float32("w")
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), `tensor "w"`) {
		t.Fatalf("reading a truncated mapped file: %v, want ErrIO naming the tensor", err)
	}
}

// TestConcurrentReadsAndClose converts from several goroutines while the
// checkpoint is closed: every conversion either completes intact or reports
// ErrClosed, and none reads an unmapped file.
func TestConcurrentReadsAndClose(t *testing.T) {
	const n = 1 << 14
	want := make([]float32, n)
	raw := make([]byte, 0, 4*n)
	for i := range want {
		want[i] = float32(i)
		raw = append(raw, f32Bytes(want[i])...)
	}
	c, err := Open(writeFile(t, "m.safetensors", build(nil, entry{"w", F32, []int{n}, raw})))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				v, err := c.Float32("w")
				if err != nil {
					if errors.Is(err, ErrClosed) {
						err = nil
					}
					errs <- err
					return
				}
				if v[n-1] != want[n-1] || v[1] != 1 {
					errs <- errors.New("torn conversion")
					return
				}
			}
		}()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
