package pipeline

import (
	"sync"
	"time"
)

// progress keeps the running totals of a run and reports them to
// Config.Progress periodically from its own goroutine, which run starts and
// the returned stop function ends (waiting for it).
type progress struct {
	cfg   *Config
	start time.Time
	total int64
	mu    sync.Mutex
	sum   Summary
}

func (p *progress) addChunk(s chunkStats, resumed bool) {
	p.mu.Lock()
	p.sum.add(s)
	if resumed {
		p.sum.Resumed += s.Rows
		p.sum.ResumedTokens += s.EncodedTokens
	}
	p.mu.Unlock()
}

func (p *progress) snapshot() Summary {
	p.mu.Lock()
	s := p.sum
	p.mu.Unlock()
	s.TotalRows = p.total
	s.Finish(p.start)
	return s
}

func (p *progress) run() (stop func()) {
	if p.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.cfg.Progress(p.snapshot())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
