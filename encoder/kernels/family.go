package kernels

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/cpu"
)

// Family names the float32 kernel family the encoder dispatches to on this
// CPU: "avx2" for the amd64 AVX2+FMA assembly kernels, "gonum" for the
// portable path (gonum's BLAS for the GEMMs, the references for the rest:
// no AVX2 and FMA, another architecture, or the purego build tag). There
// is no "avx512" family yet (see Dispatch). The CLI's version command
// prints it.
func Family() string {
	if hasAVX2FMA {
		return "avx2"
	}
	return "gonum"
}

// DispatchInfo says which kernels run for each compute mode on this CPU
// and why, from the CPU flags read once at start-up.
type DispatchInfo struct {
	// Float32 is Family(): "avx2" or "gonum".
	Float32 string `json:"float32"`
	// Int8 is "avx2" (VPMADDWD on int16-widened values) or "go" (the
	// reference loops). There is no "vnni" family yet.
	Int8 string `json:"int8"`
	// BF16 is "emulated": bf16-rounded operands on the float32 kernels of
	// Float32. "vdpbf16ps" would name AVX512_BF16 kernels, which this
	// build does not have.
	BF16 string `json:"bf16"`
	// BF16Reason is the sentence that explains BF16.
	BF16Reason string `json:"bf16_reason"`
	// Flags are the CPU features that take part in the choice (amd64:
	// avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni,
	// avx512_bf16, in /proc/cpuinfo's spelling), those this CPU has.
	Flags []string `json:"cpu_flags"`
	// Arch is runtime.GOARCH.
	Arch string `json:"arch"`
}

// bf16Table is the measurement bf16 dispatch consults instead of timing
// at start-up: on the one AVX512_BF16 CPU measured (Intel Xeon with
// avx512_bf16 and avx512_fp16, two vCPUs; shared/peers/isa/rates.sh, 12
// chains, three runs) zmm VDPBF16PS ran 77–82 GFLOP/s against zmm VFMADD
// 163–168 GFLOP/s, so VDPBF16PS is 0.49× float32 per FLOP there. It would
// be chosen only on a CPU where the ratio exceeds 1.
const bf16VsFloat32 = 0.49

// Dispatch reports the kernels this process runs and the CPU flags that
// chose them.
func Dispatch() DispatchInfo {
	d := DispatchInfo{Float32: Family(), Int8: "go", BF16: "emulated", Flags: cpuFlags(), Arch: runtime.GOARCH}
	if hasAVX2FMA {
		d.Int8 = "avx2"
	}
	if !cpu.X86.HasAVX512BF16 {
		d.BF16Reason = "no AVX512_BF16 on this CPU: bf16 accuracy is emulated on the " + d.Float32 + " float32 kernels, at float32 speed"
	} else {
		d.BF16Reason = fmt.Sprintf("AVX512_BF16 present, but VDPBF16PS measured %.2f× the float32 FMA rate on the Xeon of the bf16 table, and this build has no VDPBF16PS kernels: bf16 is emulated on the %s float32 kernels", bf16VsFloat32, d.Float32)
	}
	return d
}

// cpuFlags lists the dispatch-relevant features of this CPU.
func cpuFlags() []string {
	if runtime.GOARCH != "amd64" {
		return []string{}
	}
	x := cpu.X86
	var f []string
	for _, c := range []struct {
		name string
		has  bool
	}{
		{"avx", x.HasAVX}, {"avx2", x.HasAVX2}, {"fma", x.HasFMA},
		{"avx512f", x.HasAVX512F}, {"avx512bw", x.HasAVX512BW}, {"avx512vl", x.HasAVX512VL},
		{"avx512_vnni", x.HasAVX512VNNI}, {"avx_vnni", x.HasAVXVNNI},
		{"avx512_bf16", x.HasAVX512BF16},
	} {
		if c.has {
			f = append(f, c.name)
		}
	}
	return f
}
