package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Health answers /health (ready) and /live. It is not ready until
// SetReady(true) and while any check fails; a check is a function such as
// "the NATS connection is up".
type Health struct {
	ready  atomic.Bool
	mu     sync.Mutex
	checks []check
}

type check struct {
	name string
	f    func() error
}

// SetReady marks the process ready (model loaded) or not (draining).
func (h *Health) SetReady(v bool) { h.ready.Store(v) }

// AddCheck adds a readiness condition named name.
func (h *Health) AddCheck(name string, f func() error) {
	h.mu.Lock()
	h.checks = append(h.checks, check{name, f})
	h.mu.Unlock()
}

// Err returns why the process is not ready, or nil.
func (h *Health) Err() error {
	if !h.ready.Load() {
		return errors.New("not ready: starting or draining")
	}
	h.mu.Lock()
	cs := h.checks
	h.mu.Unlock()
	for _, c := range cs {
		if err := c.f(); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// ServeReady answers 200 {"status":"ok"} when ready, else 503 with the
// reason.
func (h *Health) ServeReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := h.Err(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// ServeLive answers 200 while the process can serve HTTP at all.
func ServeLive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Register adds /metrics, /health and /live to mux.
func Register(mux *http.ServeMux, m *Metrics, h *Health) {
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /health", h.ServeReady)
	mux.HandleFunc("GET /live", ServeLive)
}

// Serve serves /metrics, /health and /live on addr until ctx ends, then
// shuts the listener down. It returns once the listener is open, with the
// address it listens on; errors after that are logged.
func Serve(ctx context.Context, addr string, m *Metrics, h *Health, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	Register(mux, m, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("metrics server", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), nil
}
