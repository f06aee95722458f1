package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// cache keeps embeddings across runs in CacheDir/<model>-<options>/, so that
// a rerun over a changed dataset embeds only the new or changed texts.
//
// Each run appends to its own segment file of fixed-size records (a 16-byte
// SHA-256 prefix of the text, then dim little-endian float32s). Opening the
// cache indexes every segment in memory (key → segment, offset); a record cut
// short by a crash is ignored. Records are only ever appended, so concurrent
// runs sharing a cache each write their own segment safely.
type cache struct {
	dir  string
	dim  int
	mu   sync.RWMutex
	idx  map[cacheKey]cacheLoc
	segs []*os.File
	cur  int   // index in segs of this run's segment
	end  int64 // size of this run's segment
	rec  []byte
}

type cacheKey [16]byte

type cacheLoc struct {
	seg int32
	off int64
}

func textKey(s string) cacheKey {
	h := sha256.Sum256([]byte(s))
	var k cacheKey
	copy(k[:], h[:16])
	return k
}

func openCache(root, modelHash, options string, dim int) (*cache, error) {
	mh := modelHash
	if len(mh) > 16 {
		mh = mh[:16]
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%s-d%d", mh, options, dim))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &cache{dir: dir, dim: dim, idx: map[cacheKey]cacheLoc{}, rec: make([]byte, 16+4*dim)}
	names, _ := filepath.Glob(filepath.Join(dir, "seg-*.bin"))
	sort.Strings(names)
	size := int64(16 + 4*dim)
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("cache: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			c.Close()
			return nil, fmt.Errorf("cache: %w", err)
		}
		seg := int32(len(c.segs))
		c.segs = append(c.segs, f)
		var k cacheKey
		for off := int64(0); off+size <= st.Size(); off += size {
			if _, err := f.ReadAt(k[:], off); err != nil {
				break
			}
			c.idx[k] = cacheLoc{seg: seg, off: off}
		}
	}
	name := filepath.Join(dir, fmt.Sprintf("seg-%d-%d.bin", time.Now().UnixNano(), os.Getpid()))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.cur = len(c.segs)
	c.segs = append(c.segs, f)
	return c, nil
}

// get fills dst with the embedding of key and reports whether it was found.
func (c *cache) get(dst []float32, k cacheKey) bool {
	c.mu.RLock()
	loc, ok := c.idx[k]
	c.mu.RUnlock()
	if !ok {
		return false
	}
	buf := make([]byte, 4*c.dim)
	if _, err := c.segs[loc.seg].ReadAt(buf, loc.off+16); err != nil {
		return false
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return true
}

// put records the embedding of key. Write errors disable nothing: the cache
// is an optimisation, and a failed append only costs a future re-embedding.
func (c *cache) put(k cacheKey, v []float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.idx[k]; ok {
		return
	}
	copy(c.rec, k[:])
	for i, x := range v {
		binary.LittleEndian.PutUint32(c.rec[16+4*i:], math.Float32bits(x))
	}
	if _, err := c.segs[c.cur].WriteAt(c.rec, c.end); err != nil {
		return
	}
	c.idx[k] = cacheLoc{seg: int32(c.cur), off: c.end}
	c.end += int64(len(c.rec))
}

// Close syncs this run's segment and closes every file; an empty segment is
// removed.
func (c *cache) Close() error {
	var first error
	for i, f := range c.segs {
		if i == c.cur {
			if err := f.Sync(); err != nil && first == nil {
				first = err
			}
			if c.end == 0 {
				os.Remove(f.Name())
			}
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.segs = nil
	return first
}

// cacheKeyOf returns the cache key of unique sequence u of job.
func (fr *fileRun) cacheKeyOf(job *chunkJob, u int32) cacheKey { return job.keys[u] }

// memoBytes bounds the in-run memo of embeddings by text.
const memoBytes = 16 << 20

// memo remembers embeddings by text within one run, so that a text repeated
// in another chunk is not embedded again. It stops growing at memoBytes
// (first come, first kept): the bound keeps memory independent of input
// size, at the price of re-embedding repeats first seen after it is full.
type memo struct {
	mu  sync.Mutex
	m   map[cacheKey][]float32
	max int
}

func newMemo(dim int) *memo {
	// Per entry: the floats, the key, the slice header and the map's own
	// overhead (about 48 bytes per slot).
	return &memo{m: map[cacheKey][]float32{}, max: memoBytes / (4*dim + 96)}
}

func (mm *memo) get(dst []float32, k cacheKey) bool {
	mm.mu.Lock()
	v, ok := mm.m[k]
	mm.mu.Unlock()
	if ok {
		copy(dst, v)
	}
	return ok
}

func (mm *memo) put(k cacheKey, v []float32) {
	mm.mu.Lock()
	if len(mm.m) < mm.max {
		if _, ok := mm.m[k]; !ok {
			mm.m[k] = append([]float32(nil), v...)
		}
	}
	mm.mu.Unlock()
}
