package workers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAllowList(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "sub", "in.jsonl"))
	write(filepath.Join(outside, "secret.jsonl"))
	if err := os.Symlink(filepath.Join(outside, "secret.jsonl"), filepath.Join(root, "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "inner")); err != nil {
		t.Fatal(err)
	}
	a, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(root, "sub", "in.jsonl"), true},
		{filepath.Join(root, "inner", "in.jsonl"), true}, // link inside the root
		{root + "/sub/../sub/in.jsonl", false},
		{filepath.Join(outside, "secret.jsonl"), false},
		{filepath.Join(root, "link.jsonl"), false},
		{filepath.Join(root, "dirlink", "secret.jsonl"), false},
		{"sub/in.jsonl", false},
		{root + "/../outside/secret.jsonl", false},
		{"/etc/passwd", false},
	}
	for _, r := range reads {
		_, err := a.ReadPath(r.path)
		if r.ok && err != nil {
			t.Errorf("ReadPath(%s): %v", r.path, err)
		}
		if !r.ok && !errors.Is(err, ErrPathNotAllowed) {
			t.Errorf("ReadPath(%s) = %v, want ErrPathNotAllowed", r.path, err)
		}
	}
	if _, err := a.ReadPath(filepath.Join(root, "missing.jsonl")); err == nil || errors.Is(err, ErrPathNotAllowed) {
		t.Errorf("missing file inside the root: %v, want a not-exist error", err)
	}
	writes := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(root, "out", "job1"), true},
		{filepath.Join(root, "inner", "out"), true},
		{filepath.Join(root, "dirlink", "out"), false},
		{root + "/../outside/x", false},
		{filepath.Join(outside, "x"), false},
		{"relative/out", false},
	}
	for _, w := range writes {
		got, err := a.WriteDir(w.path)
		if w.ok && err != nil {
			t.Errorf("WriteDir(%s): %v", w.path, err)
		}
		if w.ok && err == nil {
			if st, err := os.Stat(got); err != nil || !st.IsDir() {
				t.Errorf("WriteDir(%s) did not create %s", w.path, got)
			}
		}
		if !w.ok && !errors.Is(err, ErrPathNotAllowed) {
			t.Errorf("WriteDir(%s) = %v, want ErrPathNotAllowed", w.path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "out")); err == nil {
		t.Fatal("WriteDir created a directory through a symlink escape")
	}
	empty, _ := NewAllowList()
	if _, err := empty.ReadPath(filepath.Join(root, "sub", "in.jsonl")); !errors.Is(err, ErrPathNotAllowed) {
		t.Fatalf("empty allow list allowed a read: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://alice:s3cret@127.0.0.1:4222":    "nats://alice:xxxxx@127.0.0.1:4222",
		"nats://tok3n@host:4222,nats://h2:4222": "nats://xxxxx@host:4222,nats://h2:4222",
		"nats://127.0.0.1:4222":                 "nats://127.0.0.1:4222",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
