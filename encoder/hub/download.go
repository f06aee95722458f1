package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// fileMeta is what a HEAD of /{id}/resolve/{commit}/{file} tells.
type fileMeta struct {
	commit string
	etag   string
	size   int64 // -1 when unknown
}

// file makes sure snapshots/{commit}/{name} links to a verified blob,
// downloading it when the cache lacks it. It reports whether it downloaded.
func (c *Client) file(ctx context.Context, repoDir, repo, commit, name string) (bool, error) {
	link := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(name))
	if _, err := os.Stat(link); err == nil {
		return false, nil
	}
	resolve := c.Endpoint + "/" + repo + "/resolve/" + commit + "/" + escapePath(name)
	what := repo + "@" + commit + ": " + name
	meta, err := c.head(ctx, resolve, what)
	if err != nil {
		return false, err
	}
	if meta.commit != "" && meta.commit != commit {
		return false, fmt.Errorf("%w: %s: X-Repo-Commit %s differs from the requested commit", ErrProtocol, what, meta.commit)
	}
	blobs := filepath.Join(repoDir, "blobs")
	blob := filepath.Join(blobs, meta.etag)
	downloaded := false
	if _, err := os.Stat(blob); err != nil {
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return false, err
		}
		locks := filepath.Join(c.CacheDir, ".locks", filepath.Base(repoDir))
		if err := os.MkdirAll(locks, 0o755); err != nil {
			return false, err
		}
		unlock, err := lockFile(filepath.Join(locks, meta.etag+".lock"))
		if err != nil {
			return false, fmt.Errorf("hub: %s: lock: %w", what, err)
		}
		// Another process may have finished the blob while this one
		// waited for the lock.
		var derr error
		if _, serr := os.Stat(blob); serr != nil {
			derr = c.download(ctx, resolve, blob, meta, name, what)
			downloaded = derr == nil
		}
		unlock()
		if derr != nil {
			return false, derr
		}
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return false, err
	}
	rel, err := filepath.Rel(filepath.Dir(link), blob)
	if err != nil {
		return false, err
	}
	if err := replaceSymlink(rel, link); err != nil {
		return false, fmt.Errorf("hub: %s: %w", what, err)
	}
	return downloaded, nil
}

// escapePath escapes each segment of a slash-separated file name.
func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// head asks for a file's commit, etag and size. Like huggingface_hub it
// follows only relative redirects (a renamed repository); an LFS file's
// redirect to its storage host is answered from the redirect's own headers.
func (c *Client) head(ctx context.Context, u, what string) (fileMeta, error) {
	hc := *c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return fileMeta{}, err
		}
		c.headers(req)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := hc.Do(req)
		if err != nil {
			return fileMeta{}, fmt.Errorf("hub: %s: %w", what, err)
		}
		resp.Body.Close()
		if err := statusErr(resp, what); err != nil {
			return fileMeta{}, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("X-Linked-Etag") == "" && strings.HasPrefix(loc, "/") {
			next, err := req.URL.Parse(loc)
			if err != nil {
				return fileMeta{}, fmt.Errorf("%w: %s: redirect %q: %w", ErrProtocol, what, loc, err)
			}
			u = next.String()
			continue
		}
		m := fileMeta{commit: resp.Header.Get("X-Repo-Commit"), size: -1}
		m.etag = normEtag(resp.Header.Get("X-Linked-Etag"))
		sz := resp.Header.Get("X-Linked-Size")
		if m.etag == "" {
			m.etag = normEtag(resp.Header.Get("ETag"))
			sz = resp.Header.Get("Content-Length")
		}
		if n, err := strconv.ParseInt(sz, 10, 64); err == nil && n >= 0 {
			m.size = n
		}
		if m.etag == "" || strings.ContainsAny(m.etag, `/\`) || strings.HasPrefix(m.etag, ".") {
			return fileMeta{}, fmt.Errorf("%w: %s: no usable ETag or X-Linked-Etag header", ErrProtocol, what)
		}
		return m, nil
	}
	return fileMeta{}, fmt.Errorf("%w: %s: too many redirects", ErrProtocol, what)
}

func normEtag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// download fetches resolve into blob through blob+".incomplete", resuming
// from what an earlier attempt left there, and renames it into place once
// its length and hash match meta.
func (c *Client) download(ctx context.Context, resolve, blob string, meta fileMeta, name, what string) error {
	tmp := blob + ".incomplete"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if meta.size >= 0 && have > meta.size {
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	if meta.size < 0 || have < meta.size {
		if err := c.get(ctx, resolve, f, have, meta.size, name, what); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := verify(f, meta); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%w: %s: %w", ErrChecksum, what, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, blob)
}

// get appends the file from offset have to f.
func (c *Client) get(ctx context.Context, u string, f *os.File, have, size int64, name, what string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c.headers(req)
	req.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	// The token goes to the hub only, not to the storage host an LFS file
	// is redirected to (Go's own rule keeps it for another port of the
	// same host).
	hc := *c.httpClient()
	endpoint := req.URL.Host
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if r.URL.Host != endpoint {
			r.Header.Del("Authorization")
		}
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("hub: %s: %w", what, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != have {
			return fmt.Errorf("%w: %s: Content-Range %q for a resume from byte %d", ErrProtocol, what, resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusOK:
		// The server ignored the range: start over.
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	default:
		if err := statusErr(resp, what); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s: %s", ErrProtocol, what, resp.Status)
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	var w io.Writer = f
	if c.Progress != nil && size >= c.progressMin() {
		p := newProgress(c.Progress, name, have, size)
		defer p.done()
		w = io.MultiWriter(f, p)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		// What arrived stays in the .incomplete file for the next try.
		return fmt.Errorf("hub: %s: download interrupted (will resume): %w", what, err)
	}
	return nil
}

func (c *Client) progressMin() int64 {
	if c.ProgressMin > 0 {
		return c.ProgressMin
	}
	return 8 << 20
}

// verify checks f's length and content against meta: a 64-hex etag is the
// sha256 of an LFS file, a 40-hex one the git blob sha1 of a plain file.
// Other etags (some mirrors) are checked for length only.
func verify(f *os.File, meta fileMeta) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if meta.size >= 0 && st.Size() != meta.size {
		return fmt.Errorf("got %d bytes, the hub announced %d", st.Size(), meta.size)
	}
	var h hash.Hash
	switch {
	case isHex(meta.etag, 64):
		h = sha256.New()
	case isHex(meta.etag, 40):
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	default:
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(meta.etag) {
		return fmt.Errorf("content hashes to %s, the etag is %s", got, meta.etag)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// replaceSymlink points link at target atomically.
func replaceSymlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := link + ".tmp-" + rand.Text()[:8]
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeRef records that revision pointed at commit, atomically.
func writeRef(repoDir, revision, commit string) error {
	p := filepath.Join(repoDir, "refs", filepath.FromSlash(path.Clean(revision)))
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp-" + rand.Text()[:8]
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
