package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"800MiB": 800 << 20, "2GiB": 2 << 30, "1.5 GB": 1.5e9, "4096": 4096, "10KB": 10e3, "3B": 3} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "0", "lots", "1TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestSetMemoryLimit checks that auto adds the bound (times 1.25) to what
// the process holds, that a size is taken as given and that off leaves the
// limit alone.
func TestSetMemoryLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	if err := setMemoryLimit("300MiB", nil); err != nil || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("300MiB: limit %d, %v", debug.SetMemoryLimit(-1), err)
	}
	if err := setMemoryLimit("off", nil); err != nil || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("off changed the limit to %d (%v)", debug.SetMemoryLimit(-1), err)
	}
	const bound = 1 << 30
	if err := setMemoryLimit("auto", func() int64 { return bound }); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got < bound*5/4 || got > bound*5/4+1<<30 {
		t.Fatalf("auto: limit %d, want 1.25 GiB plus the process's memory", got)
	}
	if err := setMemoryLimit("big", nil); err == nil {
		t.Fatal("a bad size was accepted")
	}
}
