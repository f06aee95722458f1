package workers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AllowList confines the files a worker reads and writes to a set of root
// directories. Paths in tasks come from whoever can publish on the task
// subjects, so a worker must not trust them: a path is allowed only when it
// is absolute, has no ".." element, and, with every symbolic link resolved,
// still lies under one of the (resolved) roots. An empty AllowList allows
// nothing.
type AllowList struct {
	roots []string // cleaned, symlink-resolved absolute paths
}

// NewAllowList resolves roots (which must exist) into an AllowList.
func NewAllowList(roots ...string) (*AllowList, error) {
	a := &AllowList{}
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("workers: --allow-path %s: %w", r, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("workers: --allow-path %s: %w", r, err)
		}
		a.roots = append(a.roots, filepath.Clean(real))
	}
	return a, nil
}

// Roots returns the resolved roots.
func (a *AllowList) Roots() []string { return append([]string(nil), a.roots...) }

func (a *AllowList) under(p string) bool {
	for _, r := range a.roots {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return true
		}
	}
	return false
}

func checkLexical(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%w: %q is not absolute", ErrPathNotAllowed, p)
	}
	for _, el := range strings.Split(filepath.ToSlash(p), "/") {
		if el == ".." {
			return fmt.Errorf("%w: %q has a \"..\" element", ErrPathNotAllowed, p)
		}
	}
	return nil
}

// ReadPath returns the resolved form of p, an existing file to be read, or
// ErrPathNotAllowed.
func (a *AllowList) ReadPath(p string) (string, error) {
	if err := checkLexical(p); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && a.under(filepath.Clean(p)) {
			return "", fmt.Errorf("workers: input %s: %w", p, err)
		}
		return "", fmt.Errorf("%w: %q: %v", ErrPathNotAllowed, p, err)
	}
	if !a.under(real) {
		return "", fmt.Errorf("%w: %q resolves to %q, outside every --allow-path root", ErrPathNotAllowed, p, real)
	}
	return real, nil
}

// WriteDir returns the resolved form of directory p, creating it (and its
// parents) when needed, or ErrPathNotAllowed. The part of p that exists is
// resolved first, so a symbolic link in it cannot lead the new directories
// outside the roots.
func (a *AllowList) WriteDir(p string) (string, error) {
	if err := checkLexical(p); err != nil {
		return "", err
	}
	p = filepath.Clean(p)
	// Find the longest existing prefix and resolve it.
	existing, rest := p, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrPathNotAllowed, p, err)
	}
	full := filepath.Join(real, rest)
	if !a.under(full) {
		return "", fmt.Errorf("%w: %q resolves to %q, outside every --allow-path root", ErrPathNotAllowed, p, full)
	}
	if err := os.MkdirAll(full, 0o755); err != nil {
		return "", fmt.Errorf("workers: creating output directory %s: %w", p, err)
	}
	// MkdirAll followed no link that appeared meanwhile outside the
	// roots only if the resolved result is still under them.
	again, err := filepath.EvalSymlinks(full)
	if err != nil || !a.under(again) {
		return "", fmt.Errorf("%w: %q changed while it was being created", ErrPathNotAllowed, p)
	}
	return again, nil
}
