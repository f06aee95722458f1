package hub

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line bar, redrawn with a carriage return at most
// every 200 ms, for one download.
type progress struct {
	w           io.Writer
	name        string
	done0, n    int64
	size        int64
	start, last time.Time
}

func newProgress(w io.Writer, name string, have, size int64) *progress {
	now := time.Now()
	p := &progress{w: w, name: name, done0: have, n: have, size: size, start: now}
	p.draw(now)
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.draw(now)
	}
	return len(b), nil
}

func (p *progress) draw(now time.Time) {
	p.last = now
	const width = 30
	frac := 0.0
	if p.size > 0 {
		frac = min(float64(p.n)/float64(p.size), 1)
	}
	fill := int(frac * width)
	rate := 0.0
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = float64(p.n-p.done0) / el
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %.1f/%.1f MB %.1f MB/s ", p.name,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*frac,
		float64(p.n)/1e6, float64(p.size)/1e6, rate/1e6)
}

func (p *progress) done() {
	p.draw(time.Now())
	fmt.Fprintln(p.w)
}
