package hub_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/internal/hubtest"
)

func modelDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join("..", "..", "..", "shared", "models", name)
	if _, err := os.Stat(d); err != nil {
		t.Skipf("model %s not available (../shared is absent): %v", name, err)
	}
	return d
}

func newServer(t *testing.T) *hubtest.Server {
	t.Helper()
	s, err := hubtest.New(map[string]hubtest.Repo{
		"org/tiny-bert": {Dir: modelDir(t, "tiny-bert"), Extra: map[string][]byte{
			"pytorch_model.bin": []byte("not wanted"), "onnx/model.onnx": []byte("not wanted"),
			"README.md": []byte("# tiny"), "onnx/config.json": []byte("{}"),
		}},
		"org/sharded": {Dir: modelDir(t, "tiny-bert-f16-max-sharded")},
		"org/dense":   {Dir: modelDir(t, "tiny-bert-dense")},
		"org/gated":   {Dir: modelDir(t, "tiny-bert"), Token: "hf_secret"},
		"org/torch":   {Extra: map[string][]byte{"config.json": []byte("{}"), "pytorch_model.bin": []byte("x")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(s *hubtest.Server, cache string) *hub.Client {
	return &hub.Client{Endpoint: s.URL, CacheDir: cache}
}

func countGets(reqs []string) (n int) {
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "GET /api/") {
			n++
		}
	}
	return n
}

// sameFiles checks that every file of the snapshot has the bytes of the
// source model directory.
func sameFiles(t *testing.T, snap hub.Snapshot, src string) {
	t.Helper()
	for _, f := range snap.Files {
		want, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := os.ReadFile(filepath.Join(snap.Dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("snapshot %s: %v", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("snapshot %s differs from the source", f)
		}
	}
}

func TestSnapshotLayoutCacheAndOffline(t *testing.T) {
	s := newServer(t)
	cache := t.TempDir()
	c := client(s, cache)
	ref, _ := hub.ParseRef("org/tiny-bert")
	snap, err := c.Snapshot(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	commit := s.Commit("org/tiny-bert")
	repoDir := filepath.Join(cache, "models--org--tiny-bert")
	if snap.Commit != commit || snap.Dir != filepath.Join(repoDir, "snapshots", commit) {
		t.Fatalf("snapshot %+v, want commit %s under %s", snap, commit, repoDir)
	}
	if b, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err != nil || string(b) != commit {
		t.Fatalf("refs/main = %q, %v; want %s", b, err, commit)
	}
	src := modelDir(t, "tiny-bert")
	sameFiles(t, snap, src)
	for _, unwanted := range []string{"pytorch_model.bin", "README.md", "onnx"} {
		if _, err := os.Lstat(filepath.Join(snap.Dir, unwanted)); err == nil {
			t.Errorf("%s was downloaded", unwanted)
		}
	}
	if !slices.Contains(snap.Files, "1_Pooling/config.json") || !slices.Contains(snap.Files, "model.safetensors") {
		t.Fatalf("files %v lack the pooling config or the weights", snap.Files)
	}
	if len(snap.Downloaded) != len(snap.Files) {
		t.Fatalf("downloaded %v, want all of %v", snap.Downloaded, snap.Files)
	}
	// Snapshot entries are relative links into blobs/, named by etag.
	target, err := os.Readlink(filepath.Join(snap.Dir, "1_Pooling", "config.json"))
	if err != nil || filepath.IsAbs(target) || !strings.HasPrefix(target, filepath.Join("..", "..", "..", "blobs")) {
		t.Fatalf("1_Pooling/config.json links to %q (%v), want a relative link into blobs/", target, err)
	}
	blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
	for _, b := range blobs {
		if strings.HasSuffix(b.Name(), ".incomplete") {
			t.Errorf("left %s behind", b.Name())
		}
	}
	if len(s.CDNAuthorization()) != 0 {
		t.Errorf("storage server got Authorization headers")
	}
	s.Requests()

	// A second run finds everything in the cache: one revision lookup, no
	// file downloads.
	snap2, err := c.Snapshot(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := s.Requests(); countGets(reqs) != 0 || len(snap2.Downloaded) != 0 {
		t.Fatalf("second run downloaded %v (requests %v)", snap2.Downloaded, reqs)
	}

	// Offline: nothing is asked of the server.
	off := client(s, cache)
	off.Offline = true
	for _, r := range []string{"org/tiny-bert", "org/tiny-bert@" + commit} {
		ref, _ := hub.ParseRef(r)
		snap3, err := off.Snapshot(context.Background(), ref)
		if err != nil {
			t.Fatalf("offline %s: %v", r, err)
		}
		if snap3.Dir != snap.Dir || !snap3.Cached {
			t.Fatalf("offline %s: %+v", r, snap3)
		}
	}
	if reqs := s.Requests(); len(reqs) != 0 {
		t.Fatalf("offline runs made requests %v", reqs)
	}
	other, _ := hub.ParseRef("org/dense")
	if _, err := off.Snapshot(context.Background(), other); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("offline uncached model: %v, want ErrOffline", err)
	}
}

func TestSnapshotShardedAndModules(t *testing.T) {
	s := newServer(t)
	c := client(s, t.TempDir())
	for _, id := range []string{"org/sharded", "org/dense"} {
		ref, _ := hub.ParseRef(id)
		snap, err := c.Snapshot(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		src := modelDir(t, map[string]string{"org/sharded": "tiny-bert-f16-max-sharded", "org/dense": "tiny-bert-dense"}[id])
		var want []string
		filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(src, p)
				want = append(want, filepath.ToSlash(rel))
			}
			return nil
		})
		slices.Sort(want)
		if !slices.Equal(snap.Files, want) {
			t.Fatalf("%s: files %v, want %v", id, snap.Files, want)
		}
		sameFiles(t, snap, src)
	}
}

func TestSnapshotResumesTruncatedDownload(t *testing.T) {
	s := newServer(t)
	cache := t.TempDir()
	c := client(s, cache)
	ref, _ := hub.ParseRef("org/tiny-bert")
	s.TruncateNext("model.safetensors", 100000)
	if _, err := c.Snapshot(context.Background(), ref); err == nil {
		t.Fatal("a cut download succeeded", s.Requests())
	}
	inc, _ := filepath.Glob(filepath.Join(cache, "models--org--tiny-bert", "blobs", "*.incomplete"))
	if len(inc) != 1 {
		t.Fatalf("incomplete files %v, want one", inc)
	}
	if st, err := os.Stat(inc[0]); err != nil || st.Size() != 100000 {
		t.Fatalf("incomplete file: %v %v, want 100000 bytes", st, err)
	}
	s.Requests()
	snap, err := c.Snapshot(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, snap, modelDir(t, "tiny-bert"))
	if !slices.Contains(snap.Downloaded, "model.safetensors") || slices.Contains(snap.Downloaded, "config.json") {
		t.Fatalf("second run downloaded %v, want the weights and not what the first run got", snap.Downloaded)
	}
	// The resume asked for the rest only.
	resumed := false
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, "GET cdn/") && strings.HasSuffix(r, "Range: bytes=100000-") {
			resumed = true
		}
	}
	if !resumed {
		t.Fatal("no range request resumed the weights from byte 100000")
	}
	if inc, _ := filepath.Glob(filepath.Join(cache, "models--org--tiny-bert", "blobs", "*.incomplete")); len(inc) != 0 {
		t.Fatalf("left %v", inc)
	}
}

func TestSnapshotRejectsChecksumMismatch(t *testing.T) {
	s := newServer(t)
	cache := t.TempDir()
	c := client(s, cache)
	ref, _ := hub.ParseRef("org/tiny-bert")
	for _, f := range []string{"model.safetensors", "tokenizer.json"} { // LFS sha256, git sha1
		s.Corrupt(f, true)
		_, err := c.Snapshot(context.Background(), ref)
		if !errors.Is(err, hub.ErrChecksum) || !strings.Contains(err.Error(), f) {
			t.Fatalf("corrupt %s: %v, want ErrChecksum naming it", f, err)
		}
		if _, err := os.Stat(filepath.Join(cache, "models--org--tiny-bert", "snapshots", s.Commit("org/tiny-bert"), f)); err == nil {
			t.Fatalf("corrupt %s entered the snapshot", f)
		}
		s.Corrupt(f, false)
	}
	snap, err := c.Snapshot(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, snap, modelDir(t, "tiny-bert"))
}

func TestSnapshotGatedNeedsToken(t *testing.T) {
	s := newServer(t)
	c := client(s, t.TempDir())
	ref, _ := hub.ParseRef("org/gated")
	if _, err := c.Snapshot(context.Background(), ref); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("no token: %v, want ErrUnauthorized", err)
	}
	c.Token = "hf_wrong"
	if _, err := c.Snapshot(context.Background(), ref); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want ErrUnauthorized", err)
	}
	c.Token = "hf_secret"
	snap, err := c.Snapshot(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, snap, modelDir(t, "tiny-bert"))
	if a := s.CDNAuthorization(); len(a) != 0 {
		t.Fatalf("the token was sent to the storage host: %v", a)
	}
}

func TestSnapshotErrors(t *testing.T) {
	s := newServer(t)
	c := client(s, t.TempDir())
	ref, _ := hub.ParseRef("org/torch")
	if _, err := c.Snapshot(context.Background(), ref); !errors.Is(err, hub.ErrNoWeights) || !strings.Contains(err.Error(), "pytorch_model.bin") {
		t.Fatalf("torch-only repo: %v", err)
	}
	ref, _ = hub.ParseRef("org/tiny-bert@v9")
	if _, err := c.Snapshot(context.Background(), ref); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("unknown revision: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in, repo, rev string
		ok            bool
	}{
		{"org/name", "org/name", "main", true},
		{"sentence-transformers/all-MiniLM-L6-v2@v1.0", "sentence-transformers/all-MiniLM-L6-v2", "v1.0", true},
		{"org/name@refs/pr/1", "org/name", "refs/pr/1", true},
		{"name", "", "", false},
		{"/abs/dir", "", "", false},
		{"./rel/dir", "", "", false},
		{"a/b/c", "", "", false},
		{"org/name@", "", "", false},
		{"org/../x", "", "", false},
		{"org/name@../../etc", "", "", false},
	} {
		r, err := hub.ParseRef(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (r.Repo != tc.repo || r.Revision != tc.rev)) {
			t.Errorf("ParseRef(%q) = %+v, %v", tc.in, r, err)
		}
		if err != nil && !errors.Is(err, hub.ErrRef) {
			t.Errorf("ParseRef(%q): %v does not wrap ErrRef", tc.in, err)
		}
	}
}

func TestSnapshotProgress(t *testing.T) {
	s := newServer(t)
	var buf bytes.Buffer
	c := client(s, t.TempDir())
	c.Progress, c.ProgressMin = &buf, 1<<20
	ref, _ := hub.ParseRef("org/tiny-bert")
	if _, err := c.Snapshot(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Only the 4 MB weights pass the 1 MiB threshold.
	if !strings.Contains(out, "model.safetensors [") || !strings.Contains(out, "100%") || strings.Contains(out, "vocab.txt") {
		t.Fatalf("progress output %q", out)
	}
}
