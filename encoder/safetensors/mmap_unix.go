//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapSupported reports whether mmapFile can succeed on this platform.
const mmapSupported = true

// mmapFile maps size bytes of f read-only. The mapping outlives f, so the
// caller may close f at once; the returned function releases the mapping.
func mmapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
