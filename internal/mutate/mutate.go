package mutate

import (
	"bytes"
	"encoding/binary"
	"math/rand"
)

// bounds are the integers written over four bytes: lengths and counts at
// the edges of what readers allocate from.
var bounds = []uint32{0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0, 1 << 20}

// Bytes returns a copy of seed (at least 9 bytes) with 1–4 random
// mutations drawn from r: a flipped bit, 1–8 bytes deleted, a byte
// inserted, or a boundary integer written little-endian.
func Bytes(r *rand.Rand, seed []byte) []byte {
	d := bytes.Clone(seed)
	for k := 0; k < 1+r.Intn(4); k++ {
		switch r.Intn(4) {
		case 0:
			d[r.Intn(len(d))] ^= byte(1 << r.Intn(8))
		case 1:
			p := r.Intn(len(d) - 8)
			d = append(d[:p], d[p+1+r.Intn(8):]...)
		case 2:
			p := r.Intn(len(d))
			d = append(d[:p], append([]byte{byte(r.Intn(256))}, d[p:]...)...)
		case 3:
			p := r.Intn(len(d) - 4)
			binary.LittleEndian.PutUint32(d[p:], bounds[r.Intn(len(bounds))])
		}
	}
	return d
}
