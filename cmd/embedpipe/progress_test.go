package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/pipeline"
)

// TestReporterRates feeds the reporter samples of a resumed run whose rate
// changes half-way: the rate shown is that of the last few seconds, not
// the average since the start; the resumed rows and tokens count in the
// total and percent but not in the rates; the ETA is the rows left at the
// current rate; non-terminal lines carry the total.
func TestReporterRates(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(&buf, false)
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	now := t0
	r.now = func() time.Time { return now }
	const resumed, total = 5000, 20000
	s := pipeline.Summary{RowsIn: resumed, Resumed: resumed, TotalRows: total, EncodedTokens: 50000, ResumedTokens: 50000}
	var rows, eta float64
	step := func(sec int, rowsPerS int64) {
		for i := 0; i < sec; i++ {
			now = now.Add(time.Second)
			s.RowsIn += rowsPerS
			s.EncodedTokens += 10 * rowsPerS
			s.WallSeconds = now.Sub(t0).Seconds()
			var tok float64
			rows, tok, eta = r.rates(s)
			if tok != 10*rows {
				t.Fatalf("tokens/s %g with rows/s %g: the resumed tokens leak into the rate", tok, rows)
			}
		}
	}
	step(10, 100)
	if rows != 100 {
		t.Fatalf("steady rate %g rows/s, want 100 (resumed rows must not count)", rows)
	}
	step(10, 1000)
	if rows != 1000 {
		t.Fatalf("rate %g rows/s after the speed-up, want the recent 1000, not the average", rows)
	}
	left := float64(total - s.RowsIn)
	if eta != left/1000 {
		t.Fatalf("ETA %g s, want %g", eta, left/1000)
	}
	r.progress(s)
	line := buf.String()
	for _, want := range []string{"total=20000", "percent=80.0", "rows_per_s=1000", "tokens_per_s=10000", "eta_s=4", "resumed=5000"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %s", line, want)
		}
	}
	buf.Reset()
	r.tty = true
	r.progress(s)
	if line := buf.String(); !strings.Contains(line, " 80%") || !strings.Contains(line, "16000/20000 rows") || !strings.Contains(line, "ETA 0:04") || !strings.Contains(line, "1000 rows/s") {
		t.Errorf("bar %q", line)
	}
}
