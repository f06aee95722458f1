package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/internal/mutate"
	"github.com/embedpipe/embedpipe/io/dataset"
)

// mutationFilesEnv sets the number of mutated files TestMutatedFilesThroughEmbed
// runs (default 150, to keep the suite short; the hardening figures are
// for 2,100).
const mutationFilesEnv = "EMBEDPIPE_MUTATION_FILES"

// mutationSeed writes a valid rich file at path: a text column with nulls,
// a dictionary-encoded string column, timestamps in a named zone, a
// nested struct with a list, and a decimal-free numeric column, in
// several row groups / record batches (Parquet is zstd-compressed with
// dictionary pages, as embedpipe writes it).
func mutationSeed(t *testing.T, path string) []byte {
	t.Helper()
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "lang", Type: dictType, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}, Nullable: true},
		{Name: "meta", Type: arrow.StructOf(
			arrow.Field{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
			arrow.Field{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		), Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	w, err := dataset.Create(path, schema)
	if err != nil {
		t.Fatal(err)
	}
	words := []string{"river", "bank", "account", "the", "of", "embedding", "vector", "north"}
	for batch := 0; batch < 3; batch++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := 0; i < 12; i++ {
			k := batch*12 + i
			if k%9 == 4 {
				b.Field(0).AppendNull()
			} else {
				b.Field(0).(*array.StringBuilder).Append(words[k%8] + " " + words[(k*3)%8] + " " + strings.Repeat("é", k%3))
			}
			if err := b.Field(1).(*array.BinaryDictionaryBuilder).AppendString([]string{"en", "fr", "de"}[k%3]); err != nil {
				t.Fatal(err)
			}
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1700000000000 + int64(k)*1000))
			sb := b.Field(3).(*array.StructBuilder)
			sb.Append(true)
			lb := sb.FieldBuilder(0).(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.StringBuilder).Append(words[k%8])
			sb.FieldBuilder(1).(*array.Float64Builder).Append(float64(k) / 7)
			b.Field(4).(*array.Int64Builder).Append(int64(k))
		}
		rec := b.NewRecord()
		if err := w.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestMutatedFilesThroughEmbed runs `embedpipe embed` (the real command, a
// process of its own) on mutated rich Parquet, Arrow file and Arrow stream
// files, writing JSONL (the writer that panicked on unknown zones) and
// Parquet: every run must exit 0, or 1 with one clear error line naming the
// input — never a panic, a fatal error (out of memory from a lying length)
// or a kill — and its peak RSS is recorded.
func TestMutatedFilesThroughEmbed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs embed once per mutated file")
	}
	n := 150
	if s := os.Getenv(mutationFilesEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 3 {
			t.Fatalf("%s=%q: want a number of files ≥ 3", mutationFilesEnv, s)
		}
	}
	dir := t.TempDir()
	model := filepath.Join("..", "..", "testdata", "tiny-bert")
	timeBin, _ := exec.LookPath("/usr/bin/time")
	r := rand.New(rand.NewSource(16))
	exts := []string{".parquet", ".arrow", ".arrows"}
	seeds := map[string][]byte{}
	for _, ext := range exts {
		seeds[ext] = mutationSeed(t, filepath.Join(dir, "seed"+ext))
	}
	var ok, clear int
	var peakKB int64
	start := time.Now()
	for i := 0; i < n; i++ {
		ext := exts[i%len(exts)]
		in := filepath.Join(dir, fmt.Sprintf("m%04d%s", i, ext))
		if err := os.WriteFile(in, mutate.Bytes(r, seeds[ext]), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("o%04d%s", i, []string{".jsonl", ".parquet"}[i/3%2]))
		args := []string{os.Args[0], "-test.run=^$", "embed", "--model", model, "--input", in, "--output", out, "--quiet", "--workers", "1"}
		if timeBin != "" {
			args = append([]string{timeBin, "-f", "maxrss_kb=%M"}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), mainEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := func() error {
			defer cancel()
			if err := cmd.Start(); err != nil {
				return err
			}
			go func() { <-ctx.Done(); cmd.Process.Kill() }()
			return cmd.Wait()
		}()
		msg := stderr.String()
		if j := strings.LastIndex(msg, "maxrss_kb="); j >= 0 {
			kb, _ := strconv.ParseInt(strings.TrimSpace(msg[j+len("maxrss_kb="):]), 10, 64)
			peakKB = max(peakKB, kb)
			msg = strings.TrimSpace(msg[:j])
			if k := strings.LastIndex(msg, "\n"); k >= 0 && strings.HasPrefix(msg[k+1:], "Command exited with non-zero status") {
				msg = strings.TrimSpace(msg[:k])
			}
		} else if cmd.ProcessState != nil {
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				peakKB = max(peakKB, ru.Maxrss)
			}
		}
		var ee *exec.ExitError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ee) && ee.ExitCode() == 1 && strings.HasPrefix(msg, "embedpipe embed: ") && strings.Contains(msg, in) &&
			!strings.Contains(msg, "panic") && !strings.Contains(msg, "goroutine ") && !strings.Contains(msg, "fatal error") && strings.Count(msg, "\n") == 0:
			clear++
		default:
			keep := filepath.Join(t.TempDir(), filepath.Base(in))
			os.Rename(in, keep)
			t.Fatalf("file %d (%s): %v\n%s", i, ext, err, stderr.String())
		}
		os.Remove(in)
		os.Remove(out)
	}
	t.Logf("%d mutated files through embed in %.0fs: %d exit 0, %d clear errors, 0 panics or kills; peak RSS %d MiB (/usr/bin/time: %v)",
		n, time.Since(start).Seconds(), ok, clear, peakKB/1024, timeBin != "")
}
