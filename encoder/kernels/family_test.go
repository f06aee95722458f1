package kernels

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestDispatch checks that Dispatch agrees with the kernels actually
// selected and names its reasons.
func TestDispatch(t *testing.T) {
	saved := hasAVX2FMA
	defer func() { hasAVX2FMA = saved }()
	for _, fast := range []bool{false, true} {
		if fast && !saved {
			continue
		}
		hasAVX2FMA = fast
		d := Dispatch()
		wantF, wantI := "gonum", "go"
		if fast {
			wantF, wantI = "avx2", "avx2"
		}
		if d.Float32 != wantF || Family() != wantF || d.Int8 != wantI {
			t.Errorf("fast=%v: float32 %q, Family %q, int8 %q; want %q, %q", fast, d.Float32, Family(), d.Int8, wantF, wantI)
		}
		if d.BF16 != "emulated" || !strings.Contains(d.BF16Reason, wantF) {
			t.Errorf("fast=%v: bf16 %q (%s)", fast, d.BF16, d.BF16Reason)
		}
		if d.Arch != runtime.GOARCH {
			t.Errorf("arch %q", d.Arch)
		}
		if fast && !(slices.Contains(d.Flags, "avx2") && slices.Contains(d.Flags, "fma")) {
			t.Errorf("the AVX2 kernels run but the flags %v lack avx2 or fma", d.Flags)
		}
	}
}
