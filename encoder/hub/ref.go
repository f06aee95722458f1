package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultRevision is the revision of a reference that names none.
const DefaultRevision = "main"

// Ref names a model repository on the hub and a revision of it.
type Ref struct {
	// Repo is "org/name".
	Repo string
	// Revision is a branch, a tag or a 40-hex commit hash.
	Revision string
}

var (
	repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// ParseRef parses "org/name[@revision]". The revision defaults to
// DefaultRevision. Errors wrap ErrRef.
func ParseRef(s string) (Ref, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	if hasRev && (rev == "" || strings.ContainsAny(rev, " \t\n\\") || strings.Contains(rev, "..")) {
		return Ref{}, fmt.Errorf("%w: %q: bad revision %q", ErrRef, s, rev)
	}
	if !hasRev {
		rev = DefaultRevision
	}
	org, name, ok := strings.Cut(repo, "/")
	if !ok || !repoPart.MatchString(org) || !repoPart.MatchString(name) ||
		strings.Contains(repo, "..") || strings.HasSuffix(name, ".git") {
		return Ref{}, fmt.Errorf("%w: %q: want org/name[@revision]", ErrRef, s)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

// String returns the reference in the form ParseRef reads.
func (r Ref) String() string {
	if r.Revision == "" || r.Revision == DefaultRevision {
		return r.Repo
	}
	return r.Repo + "@" + r.Revision
}

// IsCommit reports whether s is a full commit hash.
func IsCommit(s string) bool { return commitRe.MatchString(s) }

// folderName is the cache folder of a model repository, as huggingface_hub
// names it.
func folderName(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}
