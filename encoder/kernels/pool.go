package kernels

import (
	"runtime"
	"sync"
)

// Pool is a fixed set of worker goroutines that run the parallel kernels
// (Dense.ForwardParallel, Pool.For). It is created once per model or engine
// and reused for every call, so parallel calls spawn no goroutines and
// allocate nothing.
//
// A Pool runs one parallel operation at a time: calls from several
// goroutines are serialised, and a function run by For must not itself use
// the same Pool (it would deadlock); it may use a nil Pool, which runs
// everything on the calling goroutine. The owner calls Close when done.
type Pool struct {
	threads int
	mu      sync.Mutex // held for the duration of one parallel operation
	jobs    []chan poolJob
	wg      sync.WaitGroup
	scratch []*scratch // one per participant; [0] is the caller's
	op      gemmOp     // the GEMM of the operation in flight
	qop     qgemmOp    // or the int8 product in flight
	closed  bool
}

// poolJob is one participant's share of a parallel operation.
type poolJob struct {
	op     *gemmOp
	qop    *qgemmOp
	fn     func(lo, hi int)
	lo, hi int
	s      *scratch
}

// NewPool starts a Pool of threads participants: the calling goroutine plus
// threads-1 workers. threads <= 0 means runtime.GOMAXPROCS(0).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, jobs: make([]chan poolJob, threads-1), scratch: make([]*scratch, threads)}
	for i := range p.scratch {
		p.scratch[i] = new(scratch)
	}
	for i := range p.jobs {
		ch := make(chan poolJob, 1)
		p.jobs[i] = ch
		go p.worker(ch)
	}
	return p
}

// Threads reports the number of participants of p; a nil Pool has one.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the workers of p. Calls after Close run on the calling
// goroutine only. Close is idempotent.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.jobs {
		close(ch)
	}
}

func (p *Pool) worker(ch chan poolJob) {
	for j := range ch {
		j.run()
		p.wg.Done()
	}
}

func (j *poolJob) run() {
	if j.op != nil {
		j.op.rows(j.lo, j.hi, j.s)
	} else if j.qop != nil {
		j.qop.rows(j.lo, j.hi, j.s)
	} else {
		j.fn(j.lo, j.hi)
	}
}

// For splits 0…n-1 into at most Threads() contiguous ranges of at least
// grain indices (grain < 1 means 1) and calls fn(lo, hi) for each range,
// one per participant, the first on the calling goroutine. It returns when
// all calls have returned.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := p.parts(n, max(grain, 1))
	if parts <= 1 {
		fn(0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		fn(0, n)
		return
	}
	p.dispatch(n, parts, 1, poolJob{fn: fn})
}

// parts is the number of participants worth using for n indices of at
// least grain each.
func (p *Pool) parts(n, grain int) int {
	if p == nil {
		return 1
	}
	return max(1, min(p.threads, n/grain))
}

// dispatch splits 0…n-1 into parts ranges whose bounds are multiples of
// align, hands all but the first to workers, runs the first here and waits.
// p.mu must be held.
func (p *Pool) dispatch(n, parts, align int, j poolJob) {
	chunk := roundUp((n+parts-1)/parts, align)
	p.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		w := j
		w.lo, w.hi, w.s = min(i*chunk, n), min((i+1)*chunk, n), p.scratch[i]
		p.jobs[i-1] <- w
	}
	j.lo, j.hi, j.s = 0, min(chunk, n), p.scratch[0]
	j.run()
	p.wg.Wait()
}

// gemm runs g over rows 0…m-1, split across the participants of p when
// the product is large enough to repay the hand-off.
func (p *Pool) gemm(g *gemmOp, m int) {
	p.rows(m, p.rowParts(m, 2*m*g.n*g.k, gemmMR), gemmMR, g, nil)
}

// qgemm runs the int8 product g over rows 0…m-1 like gemm.
func (p *Pool) qgemm(g *qgemmOp, m int) {
	p.rows(m, p.rowParts(m, 2*m*g.d.Out*g.d.In, qMR), qMR, nil, g)
}

// rowParts is the number of participants of p worth using for m rows, in
// blocks of mr, of a product of ops multiply-adds: each gets 1<<20 of them
// at least.
func (p *Pool) rowParts(m, ops, mr int) int {
	const minOpsPerThread = 1 << 20
	if p == nil {
		return 1
	}
	return max(1, min(p.threads, ops/minOpsPerThread, (m+mr-1)/mr))
}

// rows runs the product g or q (the one that is not nil) over rows 0…m-1:
// on the calling goroutine when parts <= 1 or p is closed, else in parts
// ranges aligned to mr. The workers get a copy of the product held by p, so
// that the caller's stays on its stack.
func (p *Pool) rows(m, parts, mr int, g *gemmOp, q *qgemmOp) {
	if parts > 1 {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.closed {
			var j poolJob
			if g != nil {
				p.op = *g
				j.op = &p.op
			} else {
				p.qop = *q
				j.qop = &p.qop
			}
			p.dispatch(m, parts, mr, j)
			p.op, p.qop = gemmOp{}, qgemmOp{}
			return
		}
	}
	s := getScratch()
	if g != nil {
		g.rows(0, m, s)
	} else {
		q.rows(0, m, s)
	}
	putScratch(s)
}
