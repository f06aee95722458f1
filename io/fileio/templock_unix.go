//go:build unix

package fileio

import (
	"errors"
	"os"
	"syscall"
)

// lockTemp holds an exclusive flock on the temporary file at path through
// a descriptor of its own, which the caller closes once the file is renamed
// or removed. The kernel drops the lock when the process dies, however it
// dies: that is what marks a temporary as stale.
func lockTemp(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tryLockTemp takes the lock of the temporary at path if no live writer
// holds it; ok is false when one does.
func tryLockTemp(path string) (f *os.File, ok bool, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}
