package safetensors

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Standard file names of a Hugging Face model directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Checkpoint is an opened set of safetensors files whose tensors can be read
// by name. Its methods are safe for concurrent use.
type Checkpoint struct {
	// mu is held for reading while tensor bytes are copied, so Close cannot
	// unmap a file under a conversion in flight.
	mu      sync.RWMutex
	closed  bool
	sources []*source
	tensors map[string]*tensor
	names   []string
	files   []string
	meta    map[string]string
	path    string
}

// Open opens a checkpoint: a .safetensors file, a model.safetensors.index.json
// file, or a model directory holding model.safetensors or
// model.safetensors.index.json with its shards. Every header is validated
// before Open returns. Files are memory-mapped read-only (and read into
// memory where mapping is unavailable); nothing is copied per caller until
// Float32 converts a tensor. The caller must Close the checkpoint.
func Open(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrNoCheckpoint)
	}
	if st.IsDir() {
		single := filepath.Join(path, SingleFileName)
		if _, err := os.Stat(single); err == nil {
			return openSingle(single)
		}
		index := filepath.Join(path, IndexFileName)
		if _, err := os.Stat(index); err == nil {
			return openSharded(index)
		}
		return nil, fmt.Errorf("%s: neither %s nor %s: %w", path, SingleFileName, IndexFileName, ErrNoCheckpoint)
	}
	if strings.HasSuffix(path, ".index.json") {
		return openSharded(path)
	}
	return openSingle(path)
}

// openSingle opens one .safetensors file.
func openSingle(path string) (*Checkpoint, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, err
	}
	c, err := fromSource(src)
	if err != nil {
		src.close()
		return nil, err
	}
	return c, nil
}

// fromSource validates the header of src and builds a one-file checkpoint.
func fromSource(src *source) (*Checkpoint, error) {
	path := src.path
	p, err := parse(path, src.data)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{
		sources: []*source{src},
		tensors: make(map[string]*tensor, len(p.tensors)),
		meta:    p.meta,
		path:    path,
	}
	for _, t := range p.tensors {
		t.src = src
		c.tensors[t.info.Name] = t
	}
	c.finish()
	return c, nil
}

// finish sorts the names once so that Names need not.
func (c *Checkpoint) finish() {
	c.names = slices.Sorted(maps.Keys(c.tensors))
	for _, s := range c.sources {
		c.files = append(c.files, s.path)
	}
	slices.Sort(c.files)
	if c.meta == nil {
		c.meta = map[string]string{}
	}
}

// Close releases every file of the checkpoint. It waits for conversions in
// flight. Afterwards Float32, Float32To and Raw report ErrClosed, while the
// descriptions (Names, Info, Files, Metadata…) stay available. Closing twice
// is harmless.
func (c *Checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, s := range c.sources {
		errs = append(errs, s.close())
	}
	c.sources = nil
	return errors.Join(errs...)
}

// Path returns the path Open resolved: the .safetensors file or the index
// file.
func (c *Checkpoint) Path() string { return c.path }

// Names returns the names of all tensors, sorted. The slice is the caller's.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Len returns the number of tensors.
func (c *Checkpoint) Len() int { return len(c.names) }

// Info describes the named tensor. The returned Shape is the caller's.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	t, ok := c.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	info := t.info
	info.Shape = slices.Clone(info.Shape)
	return info, true
}

// Lookup returns the first of names that the checkpoint holds, so callers
// can try the spellings of different exporters ("bert.embeddings…" and
// "embeddings…") in order of preference.
func (c *Checkpoint) Lookup(names ...string) (string, bool) {
	for _, n := range names {
		if _, ok := c.tensors[n]; ok {
			return n, true
		}
	}
	return "", false
}

// Metadata returns a copy of the "__metadata__" strings of the checkpoint;
// for a sharded checkpoint, the union over the shards, where the first shard
// in file-name order wins a conflicting key.
func (c *Checkpoint) Metadata() map[string]string { return maps.Clone(c.meta) }

// DTypes counts the tensors of each dtype.
func (c *Checkpoint) DTypes() map[DType]int {
	m := make(map[DType]int)
	for _, t := range c.tensors {
		m[t.info.DType]++
	}
	return m
}

// NumParams returns the total number of elements over all tensors.
func (c *Checkpoint) NumParams() int64 {
	var n int64
	for _, t := range c.tensors {
		n += t.info.Elements()
	}
	return n
}

// Files returns the paths of the files the checkpoint reads, sorted. It
// stays valid after Close, for callers that hash or report the files.
func (c *Checkpoint) Files() []string { return slices.Clone(c.files) }

// lookupTensor returns the named tensor or an error wrapping
// ErrTensorNotFound that names the checkpoint.
func (c *Checkpoint) lookupTensor(name string) (*tensor, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q: %w", c.path, name, ErrTensorNotFound)
	}
	return t, nil
}

// checkShape compares the tensor's shape with the one the caller expects,
// when the caller gives one.
func checkShape(t *tensor, shape []int) error {
	if len(shape) == 0 || slices.Equal(t.info.Shape, shape) {
		return nil
	}
	return fmt.Errorf("%s: tensor %q: shape %v, want %v: %w", t.info.File, t.info.Name, t.info.Shape, shape, ErrShape)
}

// Float32 returns the named tensor converted to a fresh float32 slice the
// caller owns, in row-major order. F32, F16 and BF16 convert exactly,
// subnormals, infinities and NaN payloads included; other dtypes fail with
// ErrDType. If shape is given, the tensor's shape must equal it, else the
// error wraps ErrShape and names the file, the tensor and both shapes.
func (c *Checkpoint) Float32(name string, shape ...int) ([]float32, error) {
	t, err := c.lookupTensor(name)
	if err != nil {
		return nil, err
	}
	if err := checkShape(t, shape); err != nil {
		return nil, err
	}
	if !t.info.DType.Float() {
		return nil, dtypeErr(t)
	}
	// The header was validated against the file size, so this allocation is
	// bounded by the bytes actually on disk.
	dst := make([]float32, t.info.Elements())
	if err := c.convert(dst, t); err != nil {
		return nil, err
	}
	return dst, nil
}

// Float32To converts the named tensor into dst, which must hold exactly as
// many elements as the tensor. It is Float32 for callers that own their
// buffers; shape is checked as in Float32.
func (c *Checkpoint) Float32To(dst []float32, name string, shape ...int) error {
	t, err := c.lookupTensor(name)
	if err != nil {
		return err
	}
	if err := checkShape(t, shape); err != nil {
		return err
	}
	if !t.info.DType.Float() {
		return dtypeErr(t)
	}
	if int64(len(dst)) != t.info.Elements() {
		return fmt.Errorf("%s: tensor %q: destination holds %d elements, tensor %v has %d: %w", t.info.File, t.info.Name, len(dst), t.info.Shape, t.info.Elements(), ErrShape)
	}
	return c.convert(dst, t)
}

func dtypeErr(t *tensor) error {
	return fmt.Errorf("%s: tensor %q: dtype %s cannot be converted to float32 (supported: F32, F16, BF16): %w", t.info.File, t.info.Name, t.info.DType, ErrDType)
}

// Raw returns the tensor's bytes as stored (little-endian, row-major). The
// slice aliases the mapped file: it is read-only and valid only until Close.
func (c *Checkpoint) Raw(name string) ([]byte, error) {
	t, err := c.lookupTensor(name)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, fmt.Errorf("%s: tensor %q: %w", t.info.File, name, ErrClosed)
	}
	return t.bytes(), nil
}

// bytes slices the tensor out of its file's data section.
func (t *tensor) bytes() []byte {
	lo, hi := t.base+t.begin, t.base+t.end
	return t.src.data[lo:hi:hi]
}

// convert copies t into dst, holding the lock that keeps the mapping alive.
func (c *Checkpoint) convert(dst []float32, t *tensor) (err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return fmt.Errorf("%s: tensor %q: %w", t.info.File, t.info.Name, ErrClosed)
	}
	return guardFault(t, func() { convertTo(dst, t.bytes(), t.info.DType) })
}
