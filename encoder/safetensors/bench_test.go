package safetensors

import (
	"encoding/binary"
	"testing"
)

// BenchmarkFloat32 measures conversion of a 1 Mi-element tensor per dtype
// from a mapped file; bytes/s counts the float32 output.
func BenchmarkFloat32(b *testing.B) {
	const n = 1 << 20
	for _, dt := range []DType{F32, F16, BF16} {
		raw := make([]byte, n*dt.Size())
		for i := 0; i < n; i++ {
			switch dt {
			case F32:
				binary.LittleEndian.PutUint32(raw[4*i:], 0x3f800000+uint32(i))
			default:
				// Mix normals and subnormals so the F16 branch is exercised.
				binary.LittleEndian.PutUint16(raw[2*i:], uint16(i*7))
			}
		}
		path := writeFile(b, "bench.safetensors", build(nil, entry{"w", dt, []int{1024, n / 1024}, raw}))
		c, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, n)
		b.Run(string(dt)+"/To", func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := c.Float32To(dst, "w"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(dt)+"/Alloc", func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if _, err := c.Float32("w"); err != nil {
					b.Fatal(err)
				}
			}
		})
		c.Close()
	}
}
