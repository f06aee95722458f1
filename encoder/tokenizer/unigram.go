package tokenizer

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

func init() {
	modelCtors["Unigram"] = newUnigramFromJSON
}

// unigramUnkPenalty is how much lower than the lowest piece score an unknown
// character scores, as in SentencePiece and Hugging Face.
const unigramUnkPenalty = 10.0

// unigramPiece is one vocabulary entry of a Unigram model.
type unigramPiece struct {
	Piece string
	Score float64
}

// unigram is the Unigram language model of SentencePiece as Hugging Face
// tokenizers runs it: each word is segmented into the vocabulary pieces whose
// scores (log probabilities) have the highest sum, found by Viterbi over the
// byte positions of the word. A character that begins no piece becomes an
// unknown token scoring unigramUnkPenalty below the lowest piece; runs of
// unknown tokens are fused into one, which is then looked up whole, split
// into <0xXX> byte pieces when byte_fallback is set, or mapped to unk_id. A
// unigram is safe for concurrent use: its only mutable state is the locked,
// bounded word cache.
type unigram struct {
	pieces       []unigramPiece
	ids          map[string]int32 // the last id of each piece, like Hugging Face
	unkID        int32
	byteFallback bool
	unkScore     float64
	byteIDs      [256]int32 // id of <0xXX>, or -1

	// The trie over the pieces' bytes: node n has the edges
	// edges[first[n]:first[n+1]], sorted by label, and the piece id
	// leaf[n] (-1 for none). Node 0 is the root.
	first []int32
	edges []unigramEdge
	leaf  []int32

	scratch sync.Pool // *unigramLattice
	cache   unigramCache
}

// Words recur, so like Hugging Face the model remembers the ids of up to
// unigramCacheWords short words; once full it stops adding rather than
// evicting, which keeps lookups lock-light and memory bounded.
const (
	unigramCacheWords  = 1 << 14
	unigramCacheMaxLen = 256
	unigramCacheShards = 16
)

// unigramCache is a sharded, bounded map from word to ids. Stored slices are
// never modified.
type unigramCache struct {
	seed   maphash.Seed
	shards [unigramCacheShards]struct {
		mu sync.RWMutex
		m  map[string][]int32
	}
}

func (c *unigramCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int32)
	}
}

func (c *unigramCache) get(word string) ([]int32, bool) {
	sh := &c.shards[maphash.String(c.seed, word)%unigramCacheShards]
	sh.mu.RLock()
	ids, ok := sh.m[word]
	sh.mu.RUnlock()
	return ids, ok
}

func (c *unigramCache) put(word string, ids []int32) {
	sh := &c.shards[maphash.String(c.seed, word)%unigramCacheShards]
	sh.mu.Lock()
	if len(sh.m) < unigramCacheWords/unigramCacheShards {
		// Clone both: word is a slice of the caller's text and ids of its
		// buffer.
		sh.m[strings.Clone(word)] = slices.Clone(ids)
	}
	sh.mu.Unlock()
}

// unigramEdge is one labelled edge of the piece trie.
type unigramEdge struct {
	label byte
	child int32
}

// unigramLattice is the per-call Viterbi scratch, pooled so that steady-state
// tokenization does not allocate.
type unigramLattice struct {
	score []float64
	start []int // -1: no path reaches this position yet
	id    []int32
	spans []int // backtracked (start, end, id) triples
}

// unigramJSON is the tokenizer.json shape of a Unigram model.
type unigramJSON struct {
	Vocab        *[][2]json.RawMessage `json:"vocab"`
	UnkID        *int64                `json:"unk_id"`
	ByteFallback bool                  `json:"byte_fallback"`
}

func newUnigramFromJSON(raw []byte) (Model, error) {
	const what = "Unigram model"
	j, err := decodeConfig[unigramJSON](raw, what)
	if err != nil {
		return nil, err
	}
	if j.Vocab == nil {
		return nil, errNoField(what, "vocab")
	}
	pieces := make([]unigramPiece, len(*j.Vocab))
	for i, e := range *j.Vocab {
		if err := json.Unmarshal(e[0], &pieces[i].Piece); err != nil {
			return nil, fmt.Errorf("%w: Unigram vocab entry %d: piece is not a string: %v", ErrFormat, i, err)
		}
		if err := json.Unmarshal(e[1], &pieces[i].Score); err != nil {
			return nil, fmt.Errorf("%w: Unigram vocab entry %d (%q): score is not a number: %v", ErrFormat, i, pieces[i].Piece, err)
		}
	}
	if j.UnkID == nil {
		return nil, fmt.Errorf("%w: Unigram model has no unk_id; every input needs a fallback for unknown characters", ErrFormat)
	}
	u, err := newUnigram(pieces, *j.UnkID, j.ByteFallback)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// newUnigram builds a Unigram model from its vocabulary (the id of a piece is
// its index), the id of the unknown token and the byte_fallback flag.
func newUnigram(pieces []unigramPiece, unkID int64, byteFallback bool) (*unigram, error) {
	if len(pieces) == 0 {
		return nil, fmt.Errorf("%w: Unigram vocab is empty but needs at least the unknown token", ErrFormat)
	}
	if len(pieces) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: Unigram vocab has %d pieces, more than int32 ids can hold", ErrFormat, len(pieces))
	}
	if unkID < 0 || unkID >= int64(len(pieces)) {
		return nil, fmt.Errorf("%w: Unigram unk_id %d is outside the %d-piece vocab", ErrFormat, unkID, len(pieces))
	}
	u := &unigram{
		pieces:       pieces,
		ids:          make(map[string]int32, len(pieces)),
		unkID:        int32(unkID),
		byteFallback: byteFallback,
	}
	minScore := math.Inf(1)
	for i, p := range pieces {
		if !utf8.ValidString(p.Piece) {
			return nil, fmt.Errorf("%w: Unigram vocab entry %d is not valid UTF-8", ErrFormat, i)
		}
		if math.IsNaN(p.Score) || math.IsInf(p.Score, 0) {
			return nil, fmt.Errorf("%w: Unigram vocab entry %d (%q) has score %v", ErrFormat, i, p.Piece, p.Score)
		}
		u.ids[p.Piece] = int32(i)
		minScore = min(minScore, p.Score)
	}
	u.unkScore = minScore - unigramUnkPenalty
	for b := range u.byteIDs {
		u.byteIDs[b] = -1
		if id, ok := u.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			u.byteIDs[b] = id
		}
	}
	u.buildTrie()
	u.cache.init()
	u.scratch.New = func() any { return new(unigramLattice) }
	return u, nil
}

// buildTrie lays the distinct non-empty pieces out as a trie by recursing
// over their sorted list: the pieces below a node share its prefix and form
// a contiguous run, grouped by their next byte.
func (u *unigram) buildTrie() {
	keys := make([]string, 0, len(u.ids))
	for k := range u.ids {
		if k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// Nodes are numbered breadth-first so that each node's edges are
	// contiguous.
	type task struct {
		keys  []string
		depth int
	}
	queue := []task{{keys, 0}}
	u.first = u.first[:0]
	u.leaf = u.leaf[:0]
	u.edges = u.edges[:0]
	for qi := 0; qi < len(queue); qi++ {
		t := queue[qi]
		u.first = append(u.first, int32(len(u.edges)))
		ks := t.keys
		leaf := int32(-1)
		if len(ks) > 0 && len(ks[0]) == t.depth {
			leaf = u.ids[ks[0]]
			ks = ks[1:]
		}
		u.leaf = append(u.leaf, leaf)
		for len(ks) > 0 {
			c := ks[0][t.depth]
			n := sort.Search(len(ks), func(i int) bool { return ks[i][t.depth] > c })
			u.edges = append(u.edges, unigramEdge{label: c, child: int32(len(queue))})
			queue = append(queue, task{ks[:n], t.depth + 1})
			ks = ks[n:]
		}
	}
	u.first = append(u.first, int32(len(u.edges)))
}

// child returns the node reached from node n by byte c, or -1.
func (u *unigram) child(n int32, c byte) int32 {
	es := u.edges[u.first[n]:u.first[n+1]]
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].label < c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(es) && es[lo].label == c {
		return es[lo].child
	}
	return -1
}

// Tokenize appends the ids of the best segmentation of word to dst. Bytes of
// word that are not valid UTF-8 are treated as one-byte unknown characters.
func (u *unigram) Tokenize(dst []int32, word string) []int32 {
	if word == "" {
		return dst
	}
	cacheable := len(word) < unigramCacheMaxLen
	if cacheable {
		if ids, ok := u.cache.get(word); ok {
			return append(dst, ids...)
		}
	}
	base := len(dst)
	lat := u.scratch.Get().(*unigramLattice)
	defer u.scratch.Put(lat)
	spans := u.segment(lat, word)
	// spans holds the pieces last first; emit them in order, fusing runs
	// of unknown pieces.
	for i := len(spans) - 3; i >= 0; i -= 3 {
		s, e, id := spans[i], spans[i+1], int32(spans[i+2])
		if id != u.unkID {
			dst = append(dst, id)
			continue
		}
		for i >= 3 && spans[i-3+2] == int(u.unkID) {
			i -= 3
			e = spans[i+1]
		}
		dst = u.appendUnknown(dst, word[s:e])
	}
	if cacheable {
		u.cache.put(word, dst[base:])
	}
	return dst
}

// segment finds the best segmentation of the non-empty word and returns it
// as (start, end, id) triples, last piece first, in lat's storage.
func (u *unigram) segment(lat *unigramLattice, word string) []int {
	n := len(word)
	lat.score = unigramGrow(lat.score, n+1)
	lat.start = unigramGrow(lat.start, n+1)
	lat.id = unigramGrow(lat.id, n+1)
	for i := range lat.start {
		lat.start[i] = -1
	}
	lat.score[0] = 0
	// Forward pass, as Hugging Face's optimized encoder: at each character
	// boundary, relax every piece that starts there. Every character gets
	// at least an unknown node, so every boundary is reached. Ties keep the
	// earlier candidate, because only a strictly better score replaces a
	// node.
	for pos := 0; pos < n; {
		_, mblen := utf8.DecodeRuneInString(word[pos:])
		base := lat.score[pos]
		single := false
		node := int32(0)
		for end := pos; end < n; end++ {
			node = u.child(node, word[end])
			if node < 0 {
				break
			}
			if id := u.leaf[node]; id >= 0 {
				k := end + 1
				cand := base + u.pieces[id].Score
				if lat.start[k] < 0 || cand > lat.score[k] {
					lat.score[k], lat.start[k], lat.id[k] = cand, pos, id
				}
				if k-pos == mblen {
					single = true
				}
			}
		}
		if !single {
			k := pos + mblen
			cand := base + u.unkScore
			if lat.start[k] < 0 || cand > lat.score[k] {
				lat.score[k], lat.start[k], lat.id[k] = cand, pos, u.unkID
			}
		}
		pos += mblen
	}
	spans := lat.spans[:0]
	for end := n; end > 0; {
		s := lat.start[end]
		spans = append(spans, s, end, int(lat.id[end]))
		end = s
	}
	lat.spans = spans
	return spans
}

// appendUnknown appends the ids of a fused run of unknown characters: the
// run's own id if it is a piece, else its <0xXX> byte pieces when
// byte_fallback is set and all exist, else the unknown id.
func (u *unigram) appendUnknown(dst []int32, s string) []int32 {
	if id, ok := u.ids[s]; ok {
		return append(dst, id)
	}
	if u.byteFallback {
		ok := true
		for i := 0; i < len(s); i++ {
			if u.byteIDs[s[i]] < 0 {
				ok = false
				break
			}
		}
		if ok {
			for i := 0; i < len(s); i++ {
				dst = append(dst, u.byteIDs[s[i]])
			}
			return dst
		}
	}
	return append(dst, u.unkID)
}

// TokenToID returns the id of piece tok.
func (u *unigram) TokenToID(tok string) (int32, bool) {
	id, ok := u.ids[tok]
	return id, ok
}

// IDToToken returns the piece of id, or "" if there is none.
func (u *unigram) IDToToken(id int32) string {
	if id < 0 || int(id) >= len(u.pieces) {
		return ""
	}
	return u.pieces[id].Piece
}

// VocabSize is the number of pieces, duplicates included, as in Hugging Face.
func (u *unigram) VocabSize() int { return len(u.pieces) }

// unigramGrow returns s resized to n elements, reusing its storage when it can.
func unigramGrow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
