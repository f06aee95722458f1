package kernels

// Family names the kernel family the encoder dispatches to on this CPU:
// "avx2+fma" for the amd64 assembly kernels, "pure-go" for the references
// (no AVX2 and FMA, another architecture, or the purego build tag). The
// CLI's version command prints it.
func Family() string {
	if hasAVX2FMA {
		return "avx2+fma"
	}
	return "pure-go"
}
