package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEndpoint is the hub's address when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// Client downloads model repositories into the huggingface_hub cache. The
// zero value is not usable; build one with FromEnv or fill every field that
// has no documented default. A Client is safe for concurrent use by several
// goroutines and, through file locks on the cache, by several processes.
type Client struct {
	// Endpoint is the hub's base URL without a trailing slash.
	Endpoint string
	// Token, when set, is sent as a Bearer token to Endpoint (and not to
	// the storage hosts LFS downloads are redirected to).
	Token string
	// CacheDir is the hub cache directory (…/huggingface/hub).
	CacheDir string
	// Offline resolves from the cache alone and never touches the network.
	Offline bool
	// HTTP is the client used for requests; nil means one with a 30 s
	// header timeout and no overall limit (models are large).
	HTTP *http.Client
	// Progress, when not nil, receives a one-line progress bar for each
	// file of at least ProgressMin bytes (8 MiB when 0).
	Progress    io.Writer
	ProgressMin int64
	// UserAgent is sent with every request.
	UserAgent string
}

// FromEnv returns a Client configured as huggingface_hub configures itself:
// HF_ENDPOINT, HF_TOKEN (else the token file $HF_HOME/token), HF_HUB_CACHE
// (else $HF_HOME/hub, HF_HOME defaulting to ~/.cache/huggingface) and
// HF_HUB_OFFLINE.
func FromEnv() *Client {
	home := os.Getenv("HF_HOME")
	if home == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			if h, err := os.UserHomeDir(); err == nil {
				base = filepath.Join(h, ".cache")
			}
		}
		home = filepath.Join(base, "huggingface")
	}
	cache := os.Getenv("HF_HUB_CACHE")
	if cache == "" {
		cache = os.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	if cache == "" {
		cache = filepath.Join(home, "hub")
	}
	token := strings.TrimSpace(os.Getenv("HF_TOKEN"))
	if token == "" {
		tp := os.Getenv("HF_TOKEN_PATH")
		if tp == "" {
			tp = filepath.Join(home, "token")
		}
		if b, err := os.ReadFile(tp); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	ep := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	if ep == "" {
		ep = DefaultEndpoint
	}
	return &Client{Endpoint: ep, Token: token, CacheDir: cache, Offline: envTrue(os.Getenv("HF_HUB_OFFLINE")),
		UserAgent: "embedpipe"}
}

func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Snapshot is a model repository revision present in the cache.
type Snapshot struct {
	Ref Ref
	// Commit is the commit hash Ref.Revision resolved to.
	Commit string
	// Dir is snapshots/{Commit} in the cache: a model directory.
	Dir string
	// Files lists the repository files the snapshot holds for the model,
	// slash-separated, relative to Dir.
	Files []string
	// Downloaded lists the files this call fetched (a subset of Files).
	Downloaded []string
	// Cached is true when the snapshot came from the cache without asking
	// the hub (offline, or the hub could not be reached).
	Cached bool
}

// Snapshot makes sure the cache holds the files the model ref needs and
// returns its snapshot directory. Online it asks the hub which commit the
// revision is, records the branch or tag in refs/, and downloads only what
// is missing; if the hub cannot be reached at all (a network error, not an
// HTTP error) a snapshot already cached for the revision is used. Offline it
// reads refs/ and snapshots/ only and fails with ErrOffline when they lack
// the revision.
func (c *Client) Snapshot(ctx context.Context, ref Ref) (Snapshot, error) {
	if ref.Revision == "" {
		ref.Revision = DefaultRevision
	}
	repoDir := filepath.Join(c.CacheDir, folderName(ref.Repo))
	if c.Offline {
		s, err := c.cached(repoDir, ref)
		if err != nil {
			return Snapshot{}, fmt.Errorf("%w (HF_HUB_OFFLINE is set): %w", ErrOffline, err)
		}
		return s, nil
	}
	info, err := c.revisionInfo(ctx, ref)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ctx.Err() == nil {
			if s, cerr := c.cached(repoDir, ref); cerr == nil {
				return s, nil
			}
		}
		return Snapshot{}, err
	}
	s := Snapshot{Ref: ref, Commit: info.SHA, Dir: filepath.Join(repoDir, "snapshots", info.SHA)}
	if !IsCommit(ref.Revision) {
		if err := writeRef(repoDir, ref.Revision, info.SHA); err != nil {
			return Snapshot{}, err
		}
	}
	names := make([]string, 0, len(info.Siblings))
	for _, sb := range info.Siblings {
		names = append(names, sb.RFilename)
	}
	var modulePaths []string
	if containsName(names, "modules.json") {
		got, err := c.file(ctx, repoDir, ref.Repo, info.SHA, "modules.json")
		if err != nil {
			return Snapshot{}, err
		}
		if got {
			s.Downloaded = append(s.Downloaded, "modules.json")
		}
		if modulePaths, err = readModulePaths(filepath.Join(s.Dir, "modules.json")); err != nil {
			return Snapshot{}, fmt.Errorf("%w: %s@%s: %w", ErrProtocol, ref.Repo, info.SHA, err)
		}
	}
	files, err := SelectFiles(names, modulePaths)
	if err != nil {
		return Snapshot{}, fmt.Errorf("%s@%s: %w", ref.Repo, info.SHA, err)
	}
	s.Files = files
	for _, f := range files {
		if f == "modules.json" {
			continue
		}
		got, err := c.file(ctx, repoDir, ref.Repo, info.SHA, f)
		if err != nil {
			return Snapshot{}, err
		}
		if got {
			s.Downloaded = append(s.Downloaded, f)
		}
	}
	return s, nil
}

// cached finds ref's snapshot in the cache without the network.
func (c *Client) cached(repoDir string, ref Ref) (Snapshot, error) {
	commit := ref.Revision
	if !IsCommit(commit) {
		b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(ref.Revision)))
		if err != nil {
			return Snapshot{}, fmt.Errorf("%s: revision %q not in the cache %s", ref.Repo, ref.Revision, c.CacheDir)
		}
		commit = strings.TrimSpace(string(b))
		if !IsCommit(commit) {
			return Snapshot{}, fmt.Errorf("%s: refs/%s in the cache holds %q, not a commit", ref.Repo, ref.Revision, commit)
		}
	}
	dir := filepath.Join(repoDir, "snapshots", commit)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("%s@%s: snapshot not in the cache: %w", ref.Repo, commit, err)
	}
	return Snapshot{Ref: ref, Commit: commit, Dir: dir, Files: files, Cached: true}, nil
}

// revisionDoc is the part of /api/models/{id}/revision/{rev} this package
// reads.
type revisionDoc struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

func (c *Client) revisionInfo(ctx context.Context, ref Ref) (*revisionDoc, error) {
	u := c.Endpoint + "/api/models/" + ref.Repo + "/revision/" + url.PathEscape(ref.Revision)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRef, ref, err)
	}
	c.headers(req)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if err := statusErr(resp, ref.String()); err != nil {
		return nil, err
	}
	var doc revisionDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: revision document: %w", ErrProtocol, u, err)
	}
	if !IsCommit(doc.SHA) {
		return nil, fmt.Errorf("%w: %s: revision document has sha %q, not a commit hash", ErrProtocol, u, doc.SHA)
	}
	return &doc, nil
}

func (c *Client) headers(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 30 * time.Second,
	TLSHandshakeTimeout:   15 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// statusErr turns a non-success status into an error naming what.
func statusErr(resp *http.Response, what string) error {
	switch {
	case resp.StatusCode < 400:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s: %s", ErrUnauthorized, what, resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s: %s", ErrNotFound, what, resp.Status)
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%w: %s: %s %s", ErrProtocol, what, resp.Status, strings.TrimSpace(string(msg)))
	}
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// readModulePaths returns the module folders modules.json names.
func readModulePaths(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var mods []struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(b, &mods); err != nil {
		return nil, fmt.Errorf("modules.json: %w", err)
	}
	var out []string
	for _, m := range mods {
		if q := path.Clean(strings.Trim(m.Path, "/")); q != "." && q != "" {
			out = append(out, q)
		}
	}
	return out, nil
}
