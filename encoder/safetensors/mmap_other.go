//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package safetensors

import (
	"errors"
	"os"
)

// mmapSupported reports whether mmapFile can succeed on this platform.
const mmapSupported = false

// mmapFile always fails on platforms without unix.Mmap, so openSource reads
// the file instead.
func mmapFile(f *os.File, size int) ([]byte, func() error, error) {
	return nil, nil, errors.New("mmap unavailable on this platform")
}
