package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"iter"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Repo is one model repository the server hosts.
type Repo struct {
	// Dir is a model directory whose files are the repository's.
	Dir string
	// Extra adds files (slash-separated name → content), e.g. a
	// pytorch_model.bin that a client must not fetch.
	Extra map[string][]byte
	// Token, when set, makes the repository gated: requests without
	// "Authorization: Bearer Token" get 401.
	Token string
}

// Server is a running fake hub. Its fault fields may be set between
// requests; they are guarded by the server's lock.
type Server struct {
	// URL is the endpoint to give a hub client (HF_ENDPOINT).
	URL string

	hub, cdn *httptest.Server
	mu       sync.Mutex
	repos    map[string]*repo
	log      []string
	truncate map[string]int
	corrupt  map[string]bool
	cdnAuth  []string
}

type repo struct {
	Repo
	commit string
	files  map[string][]byte
}

// LFS reports whether the fake hub stores name through LFS: weights and
// other binary files, as the real hub's .gitattributes does.
func LFS(name string) bool {
	switch path.Ext(name) {
	case ".safetensors", ".bin", ".onnx", ".h5", ".msgpack", ".model":
		return true
	}
	return false
}

// New starts a server hosting repos (id "org/name" → Repo). It is closed
// with Close.
func New(repos map[string]Repo) (*Server, error) {
	s := &Server{repos: map[string]*repo{}, truncate: map[string]int{}, corrupt: map[string]bool{}}
	for id, r := range repos {
		rr := &repo{Repo: r, files: map[string][]byte{}}
		if r.Dir != "" {
			err := filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(r.Dir, p)
				rr.files[filepath.ToSlash(rel)] = b
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		for n, b := range r.Extra {
			rr.files[n] = b
		}
		h := sha1.New()
		h.Write([]byte(id))
		for _, n := range slices.Sorted(mapsKeys(rr.files)) {
			fmt.Fprintf(h, "%s\x00%x\x00", n, sha256.Sum256(rr.files[n]))
		}
		rr.commit = hex.EncodeToString(h.Sum(nil))
		s.repos[id] = rr
	}
	s.cdn = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	s.hub = httptest.NewServer(http.HandlerFunc(s.serveHub))
	s.URL = s.hub.URL
	return s, nil
}

func mapsKeys(m map[string][]byte) iter.Seq[string] { return maps.Keys(m) }

// Close stops the server.
func (s *Server) Close() { s.hub.Close(); s.cdn.Close() }

// Commit returns the commit hash the server gives repository id.
func (s *Server) Commit(id string) string { return s.repos[id].commit }

// Requests returns the requests served so far, as "METHOD path" lines
// (storage-server downloads as "GET cdn/{sha256}/{file}"), with
// " Range: …" added for range requests, and forgets them.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log
	s.log = nil
	return l
}

// CDNAuthorization returns the Authorization headers the storage server
// received (it should receive none).
func (s *Server) CDNAuthorization() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cdnAuth)
}

// TruncateNext makes the next download of file (from any repository) send
// only n bytes and then cut the connection.
func (s *Server) TruncateNext(file string, n int) {
	s.mu.Lock()
	s.truncate[file] = n
	s.mu.Unlock()
}

// Corrupt makes every download of file (from any repository) send content
// with one byte changed, under the true etag; false undoes it.
func (s *Server) Corrupt(file string, on bool) {
	s.mu.Lock()
	s.corrupt[file] = on
	s.mu.Unlock()
}

func (s *Server) record(r *http.Request, p string) {
	s.mu.Lock()
	l := r.Method + " " + p
	if rg := r.Header.Get("Range"); rg != "" {
		l += " Range: " + rg
	}
	s.log = append(s.log, l)
	s.mu.Unlock()
}

func gitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	s.record(r, p)
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		s.serveRevision(w, r, rest)
		return
	}
	// /{org}/{name}/resolve/{rev}/{file...}
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	rr, _, ok := s.resolve(w, r, parts, func(string) string { return "revision not found" })
	if !ok {
		return
	}
	file, _ := url.PathUnescape(parts[4])
	b, ok := rr.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "entry not found", http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", rr.commit)
	if LFS(file) {
		sum := sha256.Sum256(b)
		sh := hex.EncodeToString(sum[:])
		pointer := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", sh, len(b))
		w.Header().Set("ETag", `"`+gitBlobSHA1([]byte(pointer))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+sh+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(b)))
		w.Header().Set("Location", s.cdn.URL+"/"+sh+"/"+url.PathEscape(path.Base(file)))
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitBlobSHA1(b)+`"`)
	s.serveBytes(w, r, file, b)
}

// resolve authorizes the repository parts[0]/parts[1] of a request path
// and checks its revision parts[3] (escaped): main or the repository's
// commit. It returns the repository and its id, or answers the request
// itself and returns false: 401 (see authorize), or 404 with the body
// notFound gives for an unknown revision.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, parts []string, notFound func(rev string) string) (*repo, string, bool) {
	id := parts[0] + "/" + parts[1]
	rr, ok := s.authorize(w, r, id)
	if !ok {
		return nil, "", false
	}
	rev, _ := url.PathUnescape(parts[3])
	if rev != "main" && rev != rr.commit {
		http.Error(w, notFound(rev), http.StatusNotFound)
		return nil, "", false
	}
	return rr, id, true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, id string) (*repo, bool) {
	rr, ok := s.repos[id]
	if !ok || (rr.Token != "" && r.Header.Get("Authorization") != "Bearer "+rr.Token) {
		// The real hub answers 401 both for gated repositories and,
		// to anonymous callers, for ones that do not exist.
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, `{"error":"Access to model `+id+` is restricted. You must have access to it and be authenticated to access it."}`, http.StatusUnauthorized)
		return nil, false
	}
	return rr, true
}

func (s *Server) serveRevision(w http.ResponseWriter, r *http.Request, rest string) {
	// {org}/{name}/revision/{rev}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) != 4 || parts[2] != "revision" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	rr, id, ok := s.resolve(w, r, parts, func(rev string) string { return `{"error":"Invalid rev id: ` + rev + `"}` })
	if !ok {
		return
	}
	type sib struct {
		RFilename string `json:"rfilename"`
	}
	doc := struct {
		ID       string `json:"id"`
		ModelID  string `json:"modelId"`
		SHA      string `json:"sha"`
		Siblings []sib  `json:"siblings"`
	}{ID: id, ModelID: id, SHA: rr.commit}
	for _, n := range slices.Sorted(mapsKeys(rr.files)) {
		doc.Siblings = append(doc.Siblings, sib{n})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.record(r, "cdn"+r.URL.Path)
	s.mu.Lock()
	if a := r.Header.Get("Authorization"); a != "" {
		s.cdnAuth = append(s.cdnAuth, a)
	}
	s.mu.Unlock()
	sh, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, rr := range s.repos {
		for name, b := range rr.files {
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) == sh {
				s.serveBytes(w, r, name, b)
				return
			}
		}
	}
	http.Error(w, "no such object", http.StatusNotFound)
}

// serveBytes serves b with Range support and the injected faults.
func (s *Server) serveBytes(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	s.mu.Lock()
	cut, doCut := s.truncate[name]
	if doCut && r.Method == http.MethodGet {
		delete(s.truncate, name)
	}
	bad := s.corrupt[name]
	s.mu.Unlock()
	if bad {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x55
	}
	if doCut && r.Method == http.MethodGet && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:min(cut, len(b))])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(b))
}
