package encoder_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/internal/hubtest"
)

// TestLoadHubID loads a model by hub id from a local fake hub and checks
// that it embeds exactly as the same directory loaded from disk, online
// and then offline from the cache.
func TestLoadHubID(t *testing.T) {
	srv, err := hubtest.New(map[string]hubtest.Repo{"acme/tiny-bert": {Dir: tinyBERT}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cache := t.TempDir()
	texts := []string{"Hello, world!", "Vectors for every row."}
	embed := func(m *encoder.Model) []float32 {
		var b encoder.Batch
		for _, s := range texts {
			if _, err := m.AppendTo(&b, s, "", 0); err != nil {
				t.Fatal(err)
			}
		}
		out := make([]float32, b.Len()*m.Dim())
		if err := m.EmbedBatch(context.Background(), &b, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := embed(load(t, tinyBERT))
	for _, offline := range []bool{false, true} {
		c := &hub.Client{Endpoint: srv.URL, CacheDir: cache, Offline: offline}
		m, err := encoder.LoadContext(context.Background(), "acme/tiny-bert@main", encoder.WithHub(c))
		if err != nil {
			t.Fatalf("offline=%v: %v", offline, err)
		}
		if got := embed(m); !slices.Equal(got, want) {
			t.Fatalf("offline=%v: hub model embeds differently from the directory", offline)
		}
		if i := m.Info(); i.Hub != "acme/tiny-bert" || i.Revision != srv.Commit("acme/tiny-bert") {
			t.Fatalf("offline=%v: Info hub %q revision %q", offline, i.Hub, i.Revision)
		}
	}
	c := &hub.Client{Endpoint: srv.URL, CacheDir: t.TempDir()}
	if _, err := encoder.LoadContext(context.Background(), "acme/missing", encoder.WithHub(c)); !errors.Is(err, encoder.ErrModelDir) || !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("unknown hub id: %v", err)
	}
}
