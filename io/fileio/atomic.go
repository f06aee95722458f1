package fileio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AtomicFile is a temporary file in the directory of its final path. Commit
// fsyncs it, renames it onto the final path and fsyncs the directory, so that
// after a crash at any moment the final path holds either nothing (or the
// previous complete file) or the complete new file, never a partial one.
type AtomicFile struct {
	*os.File
	// NoSync skips the fsyncs in Commit: the rename is still atomic for a
	// process crash (kill -9), but an OS crash may leave an empty or partial
	// file at the final path. For checkpoints that are validated on reuse.
	NoSync bool
	final  string
	done   bool
	lock   *os.File // holds the flock that marks the temporary live
}

// tempPrefix is the name prefix of the temporaries of final path.
func tempPrefix(final string) string { return "." + filepath.Base(final) + ".tmp-" }

// CreateAtomic creates the temporary file for final path.
func CreateAtomic(final string) (*AtomicFile, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", final, err)
	}
	lock, err := lockTemp(f.Name())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("creating %s: locking its temporary: %w", final, err)
	}
	// CreateTemp makes the file private (0600); a dataset written by embed
	// should get the mode os.Create gives under the usual umask instead.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		unlock(lock)
		return nil, fmt.Errorf("creating %s: %w", final, err)
	}
	return &AtomicFile{File: f, final: final, lock: lock}, nil
}

// Final returns the path the file will have after Commit.
func (a *AtomicFile) Final() string { return a.final }

// Commit makes the file durable at its final path.
func (a *AtomicFile) Commit() error {
	if a.done {
		return nil
	}
	a.done = true
	defer unlock(a.lock)
	tmp := a.File.Name()
	if !a.NoSync {
		if err := a.File.Sync(); err != nil {
			a.File.Close()
			os.Remove(tmp)
			return fmt.Errorf("syncing %s: %w", a.final, err)
		}
	}
	if err := a.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("closing %s: %w", a.final, err)
	}
	if err := os.Rename(tmp, a.final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming into %s: %w", a.final, err)
	}
	if a.NoSync {
		return nil
	}
	return SyncDir(filepath.Dir(a.final))
}

// CommitAfter runs finish (a writer's last flush or close into the file)
// and then Commit; when finish fails it aborts the file instead and returns
// finish's error, prefixed with the final path.
func (a *AtomicFile) CommitAfter(finish func() error) error {
	if err := finish(); err != nil {
		a.Abort()
		return fmt.Errorf("%s: %w", a.final, err)
	}
	return a.Commit()
}

// Abort removes the temporary file; it is a no-op after Commit.
func (a *AtomicFile) Abort() error {
	if a.done {
		return nil
	}
	a.done = true
	defer unlock(a.lock)
	a.File.Close()
	return os.Remove(a.File.Name())
}

func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// freshTemp is how long an empty temporary is left alone although no lock
// is held on it: CreateAtomic creates the file a moment before it locks it.
const freshTemp = 2 * time.Second

// RemoveStaleTemps removes the temporaries that writers of final path
// (CreateAtomic) killed mid-write left beside it, and returns how many it
// removed. A temporary whose writer is alive holds a lock and is kept, so
// this is safe while other processes write the same path.
func RemoveStaleTemps(final string) (int, error) {
	p := tempPrefix(final)
	return RemoveStaleTempsIn(filepath.Dir(final), func(name string) bool { return strings.HasPrefix(name, p) })
}

// RemoveStaleTempsIn is RemoveStaleTemps for every temporary in dir whose
// name match accepts (nil: every name of CreateAtomic's form).
func RemoveStaleTempsIn(dir string, match func(name string) bool) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, ".") || !strings.Contains(name, ".tmp-") || match != nil && !match(name) {
			continue
		}
		path := filepath.Join(dir, name)
		f, ok, err := tryLockTemp(path)
		if err != nil || !ok {
			continue // gone already, or alive
		}
		if st, err := f.Stat(); err == nil && (st.Size() > 0 || time.Since(st.ModTime()) > freshTemp) {
			if os.Remove(path) == nil {
				n++
			}
		}
		f.Close()
	}
	return n, nil
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to path atomically and durably.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(path, data, false)
}

// WriteFileAtomicNoSync writes data to path atomically without fsync (see
// AtomicFile.NoSync).
func WriteFileAtomicNoSync(path string, data []byte) error {
	return writeFileAtomic(path, data, true)
}

func writeFileAtomic(path string, data []byte, noSync bool) error {
	f, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	f.NoSync = noSync
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}
