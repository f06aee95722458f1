package arrowio

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

// cappedAllocator is the allocator of the IPC readers: it refuses, by
// panicking (which the Reader's recover turns into an error naming the file),
// any single allocation larger than its cap. The verifier bounds what the
// metadata says against the file; this bounds what the verifier cannot see,
// such as the uncompressed length at the head of a compressed buffer.
type cappedAllocator struct {
	memory.Allocator
	cap int
}

// minAllocCap and allocRatio set the cap of a file of n bytes:
// max(minAllocCap, allocRatio*n). Compressed Arrow buffers rarely expand more
// than a few tens of times; a lying length asks for thousands.
const (
	minAllocCap = 256 << 20
	allocRatio  = 256
)

func newCappedAllocator(fileSize int64) *cappedAllocator {
	c := int64(minAllocCap)
	if fileSize > 0 && fileSize < (1<<62)/allocRatio {
		c = max(c, fileSize*allocRatio)
	}
	return &cappedAllocator{Allocator: memory.DefaultAllocator, cap: int(min(c, int64(^uint(0)>>1)))}
}

func (a *cappedAllocator) check(n int) {
	if n < 0 || n > a.cap {
		panic(fmt.Sprintf("allocation of %d bytes refused: more than %d bytes for this file (a lying length?)", n, a.cap))
	}
}

func (a *cappedAllocator) Allocate(n int) []byte {
	a.check(n)
	return a.Allocator.Allocate(n)
}

func (a *cappedAllocator) Reallocate(n int, b []byte) []byte {
	a.check(n)
	return a.Allocator.Reallocate(n, b)
}
