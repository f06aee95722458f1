package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
)

// DefaultMaxModels is the number of models a Models cache holds in memory
// when ModelsConfig.Max is 0.
const DefaultMaxModels = 2

// ModelMetadataKey is the key of the Parquet key-value metadata (the
// Arrow schema metadata) under which a part records, as the JSON of a
// schemas.Model, the model it was embedded with.
const ModelMetadataKey = "embedpipe.model"

// ModelsConfig configures a Models cache.
type ModelsConfig struct {
	// Default is the model a task that names none is embedded with: a
	// model directory or a hub reference "org/name[@revision]", as the
	// worker's --model. Required.
	Default string
	// Loaded, when not nil, is Default already loaded (the worker loads
	// it at start-up to fail fast); otherwise it is loaded on first use.
	Loaded *encoder.Model
	// Resident keeps the default model in memory for good, for a process
	// that uses it besides the workers (serve's embed service). It still
	// counts against Max.
	Resident bool
	// Max bounds the models held in memory at once, the default included
	// (DefaultMaxModels when 0). A model that a running task uses is never
	// freed: a task that needs a new model while every slot is in use
	// waits for one to be released.
	Max int
	// Allow confines the model directories a job may name: only those
	// under the worker's --allow-path roots are loaded. The default
	// model's directory is always allowed. Hub models are loaded from the
	// hub cache, downloading what it lacks.
	Allow *AllowList
	// Options are given to encoder.LoadContext for every model (threads,
	// the hub client).
	Options []encoder.Option
	// Logger receives loads and evictions; nil discards them.
	Logger *slog.Logger
}

// Models is a bounded, reference-counted cache of loaded models shared by
// the workers of a process. Acquire finds or loads the model a task names;
// concurrent Acquires of a model that is loading wait for the one load.
// When a new model needs a slot, the least recently used model that no
// task holds is evicted (closed). Models is safe for concurrent use.
type Models struct {
	cfg        ModelsConfig
	log        *slog.Logger
	defaultKey string
	defaultSrc string // the directory (absolute) or hub reference
	defaultHub *hub.Ref
	// ctx bounds the loads; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	defaultHash string // the default's content hash, once known
	entries     map[string]*modelEntry
	tick        uint64
	// changed is closed (and replaced) whenever a model is released,
	// evicted or fails to load, to wake Acquires waiting for a slot.
	changed chan struct{}
}

type modelEntry struct {
	key, src string
	ready    chan struct{} // closed once m or err is set
	m        *encoder.Model
	used     schemas.Model
	err      error
	refs     int
	lastUsed uint64
	resident bool
}

// NewModels returns a cache for cfg. It loads nothing unless cfg.Loaded is
// nil and the default is needed.
func NewModels(cfg ModelsConfig) (*Models, error) {
	if cfg.Default == "" {
		return nil, fmt.Errorf("%w: workers: Models needs a default model", pipeline.ErrConfig)
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMaxModels
	}
	if cfg.Allow == nil {
		cfg.Allow = &AllowList{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Models{cfg: cfg, log: log, entries: map[string]*modelEntry{}, changed: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	src := cfg.Default
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, fmt.Errorf("workers: --model %s: %w", src, err)
		}
		if real, err = filepath.Abs(real); err != nil {
			return nil, fmt.Errorf("workers: --model %s: %w", src, err)
		}
		c.defaultKey, c.defaultSrc = "dir:"+real, real
	} else if ref, rerr := hub.ParseRef(src); rerr == nil {
		c.defaultKey, c.defaultSrc, c.defaultHub = "hub:"+ref.Repo+"@"+ref.Revision, src, &ref
	} else {
		return nil, fmt.Errorf("workers: --model %s: neither a directory nor a hub id: %w", src, err)
	}
	if cfg.Loaded != nil {
		e := &modelEntry{key: c.defaultKey, src: c.defaultSrc, ready: make(chan struct{}), resident: cfg.Resident}
		e.m, e.used = cfg.Loaded, usedModel(cfg.Loaded)
		close(e.ready)
		c.entries[e.key] = e
		c.defaultHash = e.used.ContentHash
	}
	return c, nil
}

// Close stops the loads in progress; models already loaded stay usable by
// the leases that hold them.
func (c *Models) Close() { c.cancel() }

// ModelLease is a model held for one task. The model is not evicted until
// Release.
type ModelLease struct {
	// Model is the loaded model.
	Model *encoder.Model
	// Used names it as manifests and part metadata record it.
	Used schemas.Model

	c    *Models
	e    *modelEntry
	once sync.Once
}

// Release gives the model back to the cache. It may be called more than
// once.
func (l *ModelLease) Release() {
	l.once.Do(func() {
		c := l.c
		c.mu.Lock()
		defer c.mu.Unlock()
		l.e.refs--
		c.tick++
		l.e.lastUsed = c.tick
		c.signal()
	})
}

// signal wakes the Acquires waiting for a change; c.mu is held.
func (c *Models) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Acquire returns the model that want names, loading it when needed: a
// hub id (at want.Revision, default main) from the hub cache, a directory
// when it lies under the allowed roots, the default model when want names
// none. A want.ContentHash must equal the loaded model's. Errors wrap
// ErrWrongModel when another worker may have the model (a directory
// outside this worker's roots, a content hash only known elsewhere, a hub
// model missing from an offline cache), ErrPermanent when no worker can
// embed the task with it (a load that fails for good, a content hash that
// differs from the model's), and are transient otherwise (the network, ctx).
// A branch or tag is resolved to its commit when the model is loaded: while
// the model stays in memory, tasks naming the same branch get that commit,
// which the lease's Used records. The caller must Release the lease.
func (c *Models) Acquire(ctx context.Context, want schemas.Model) (*ModelLease, error) {
	key, src, err := c.source(want)
	if err != nil {
		return nil, err
	}
	e, err := c.entry(ctx, key, src)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		c.unref(e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		c.unref(e)
		return nil, e.err
	}
	l := &ModelLease{Model: e.m, Used: e.used, c: c, e: e}
	if want.ContentHash != "" && want.ContentHash != e.used.ContentHash {
		l.Release()
		return nil, fmt.Errorf("%w: %w: the job pins content hash %s, and %s has %s: not embedded with another model",
			ErrPermanent, ErrModelMismatch, want.ContentHash, describe(e.used), e.used.ContentHash)
	}
	return l, nil
}

// unref drops a reference taken by entry without a lease.
func (c *Models) unref(e *modelEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	c.signal()
}

// source returns the cache key of the model want names and what to give
// encoder.LoadContext for it.
func (c *Models) source(want schemas.Model) (key, src string, err error) {
	switch {
	case want.Hub != "":
		rev := want.Revision
		if rev == "" {
			rev = hub.DefaultRevision
		}
		ref, err := hub.ParseRef(want.Hub + "@" + rev)
		if err != nil {
			return "", "", fmt.Errorf("%w: model.hub: %w", ErrPermanent, err)
		}
		if c.defaultHub != nil && c.defaultHub.Repo == ref.Repo && c.defaultHub.Revision == ref.Revision {
			return c.defaultKey, c.defaultSrc, nil
		}
		// A commit may be the one a branch already resolved to.
		if hub.IsCommit(ref.Revision) {
			if k := c.findLoaded(func(u schemas.Model) bool { return u.Hub == ref.Repo && u.Revision == ref.Revision }); k != "" {
				return k, "", nil
			}
		}
		s := ref.Repo + "@" + ref.Revision
		// encoder.LoadContext reads its argument as a directory first: a
		// local path that happens to spell the reference must not be
		// loaded, since no --allow-path check would apply to it.
		if _, err := os.Lstat(s); !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("%w: hub model %s also names a path in the worker's directory: refused", ErrPermanent, s)
		}
		return "hub:" + s, s, nil
	case want.Dir != "":
		if c.defaultHub == nil && sameDir(want.Dir, c.defaultSrc) {
			return c.defaultKey, c.defaultSrc, nil
		}
		real, err := c.cfg.Allow.ReadPath(want.Dir)
		if err != nil {
			// Not ErrPathNotAllowed (permanent): a worker with other roots,
			// or with this model, may take it.
			return "", "", fmt.Errorf("%w: model directory %s: %v; it is left for a worker that has it", ErrWrongModel, want.Dir, err)
		}
		return "dir:" + real, real, nil
	case want.ContentHash != "":
		c.mu.Lock()
		isDefault := want.ContentHash == c.defaultHash
		c.mu.Unlock()
		if isDefault {
			return c.defaultKey, c.defaultSrc, nil
		}
		if k := c.findLoaded(func(u schemas.Model) bool { return u.ContentHash == want.ContentHash }); k != "" {
			return k, "", nil
		}
		return "", "", fmt.Errorf("%w: the job names only model content hash %s, which no model loaded here has; it is left for a worker that has it",
			ErrWrongModel, want.ContentHash)
	}
	return c.defaultKey, c.defaultSrc, nil
}

// findLoaded returns the key of a loaded model that match accepts, or "".
// The default's key is returned when it matches even while it is not
// loaded, so that it is reloaded rather than refused.
func (c *Models) findLoaded(match func(schemas.Model) bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.m != nil && match(e.used) {
			return k
		}
	}
	return ""
}

// entry returns the entry of key with a reference taken, starting its
// load when it is not in the cache, after evicting the least recently used
// idle model if every slot is taken, or waiting for a slot to be released.
func (c *Models) entry(ctx context.Context, key, src string) (*modelEntry, error) {
	c.mu.Lock()
	for {
		if e, ok := c.entries[key]; ok {
			e.refs++
			c.mu.Unlock()
			return e, nil
		}
		if src == "" {
			// Found by content hash or commit, and evicted meanwhile.
			c.mu.Unlock()
			return nil, fmt.Errorf("workers: model %s was evicted while it was looked up", key)
		}
		if len(c.entries) < c.cfg.Max || c.evictLocked() {
			break
		}
		if c.allResident() {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: --max-models %d leaves no room beside the resident model; it is left for a worker that can load %s",
				ErrWrongModel, c.cfg.Max, src)
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
	e := &modelEntry{key: key, src: src, ready: make(chan struct{}), refs: 1, resident: c.cfg.Resident && key == c.defaultKey}
	c.entries[key] = e
	c.mu.Unlock()
	go c.load(e)
	return e, nil
}

// allResident reports whether every slot holds a resident model; c.mu is
// held.
func (c *Models) allResident() bool {
	for _, e := range c.entries {
		if !e.resident {
			return false
		}
	}
	return true
}

// evictLocked removes the least recently used model that nobody holds and
// reports whether it found one; c.mu is held.
func (c *Models) evictLocked() bool {
	var victim *modelEntry
	for _, e := range c.entries {
		if e.refs > 0 || e.resident || e.m == nil {
			continue
		}
		if victim == nil || e.lastUsed < victim.lastUsed {
			victim = e
		}
	}
	if victim == nil {
		return false
	}
	delete(c.entries, victim.key)
	c.log.Info("model evicted", "model", describe(victim.used), "content_hash", victim.used.ContentHash)
	_ = victim.m.Close()
	return true
}

// load loads e and wakes its waiters. The load is bound to the cache
// (Close), not to the task that started it, since other tasks may wait for
// it; a failed entry leaves the cache at once so that a later task tries
// again.
func (c *Models) load(e *modelEntry) {
	c.log.Info("loading model", "model", e.src)
	m, err := encoder.LoadContext(c.ctx, e.src, c.cfg.Options...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		e.err = loadError(e.src, err)
		delete(c.entries, e.key)
		c.log.Warn("model load failed", "model", e.src, "err", err)
	} else {
		e.m, e.used = m, usedModel(m)
		if e.key == c.defaultKey {
			c.defaultHash = e.used.ContentHash
		}
		c.log.Info("model loaded", "model", describe(e.used), "content_hash", e.used.ContentHash)
	}
	close(e.ready)
	c.signal()
}

// loadError classifies a load failure: network trouble and damaged
// downloads are worth another try, a model that is offline-only missing
// may be on another worker, anything else (no such model, unsupported
// architecture, broken files) fails the task with the reason.
func loadError(src string, err error) error {
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ue), errors.As(err, &ne),
		errors.Is(err, hub.ErrProtocol), errors.Is(err, hub.ErrChecksum):
		return fmt.Errorf("workers: loading model %s: %w", src, err)
	case errors.Is(err, hub.ErrOffline):
		return fmt.Errorf("%w: loading model %s: %v; it is left for a worker that has it", ErrWrongModel, src, err)
	}
	return fmt.Errorf("%w: loading model %s: %w", ErrPermanent, src, err)
}

// Len returns the number of models in memory or loading.
func (c *Models) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// usedModel names m as manifests and part metadata record it: the hub id
// and commit of a hub model (its cache directory is this machine's), the
// absolute directory of a local one, and the content hash.
func usedModel(m pipeline.Model) schemas.Model {
	i := m.Info()
	if i.Hub != "" {
		return schemas.Model{Hub: i.Hub, Revision: i.Revision, ContentHash: m.ContentHash()}
	}
	dir := i.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return schemas.Model{Dir: dir, ContentHash: m.ContentHash()}
}

func describe(m schemas.Model) string {
	if m.Hub != "" {
		return m.Hub + "@" + m.Revision
	}
	return m.Dir
}

// partMetadata is the metadata a part records of the model m it was
// embedded with.
func partMetadata(m pipeline.Model) map[string]string {
	b, _ := json.Marshal(usedModel(m))
	return map[string]string{ModelMetadataKey: string(b)}
}

// PartModel returns the model recorded in the metadata of the Parquet part
// at path; ok is false when the part records none.
func PartModel(path string) (m schemas.Model, ok bool, err error) {
	md, err := partMetadataOf(path)
	if err != nil {
		return schemas.Model{}, false, err
	}
	s, ok := md[ModelMetadataKey]
	if !ok {
		return schemas.Model{}, false, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return schemas.Model{}, false, fmt.Errorf("workers: part %s: metadata %s: %w", path, ModelMetadataKey, err)
	}
	return m, true, nil
}

// partMetadataOf returns the key-value metadata of the Parquet part at path.
func partMetadataOf(path string) (map[string]string, error) {
	r, err := parquetio.Open(path, parquetio.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("workers: reading part %s: %w", path, err)
	}
	defer r.Close()
	return r.Schema().Metadata().ToMap(), nil
}

// ModelRunner is a TaskRunner that can run a task with a model of the
// worker's Models instead of its own. WithModel returns a runner for m that
// shares everything else with the receiver.
type ModelRunner interface {
	TaskRunner
	WithModel(m *encoder.Model) TaskRunner
}

// WithModel implements ModelRunner.
func (r *PipelineRunner) WithModel(m *encoder.Model) TaskRunner {
	c := *r
	c.Model = m
	return &c
}
