package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model: a word starts as one symbol per character and the
// adjacent pair of lowest merge rank is merged until no pair has a merge,
// as in Hugging Face tokenizers (ties go to the leftmost pair).
type bpe struct {
	vocabTable
	merges       map[uint64]merge // key: left id << 32 | right id
	unk          int32            // -1: characters outside the vocabulary are dropped
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	cacheMu sync.RWMutex
	cache   map[string][]int32
	work    sync.Pool // *bpeWork
}

type merge struct {
	rank int32
	id   int32
}

// Words no longer than bpeCacheWord bytes are cached, up to bpeCacheSize of
// them: natural text repeats its words, and a bounded cache cannot grow
// with adversarial input.
const (
	bpeCacheSize = 50000
	bpeCacheWord = 64
)

// bpeSymbol is a node of the doubly linked list of a word's symbols.
type bpeSymbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	dead       bool
}

// bpeCandidate is a possible merge of the symbol at pos with its successor.
type bpeCandidate struct {
	rank, pos, id int32
}

type bpeWork struct {
	syms []bpeSymbol
	heap []bpeCandidate
	buf  []byte
}

func newBPE(vocab map[string]int32, pairs [][2]string, unk *string, prefix, suffix string) (*bpe, error) {
	vt, err := newVocabTable(vocab)
	if err != nil {
		return nil, err
	}
	m := &bpe{vocabTable: vt, merges: make(map[uint64]merge, len(pairs)), unk: -1, prefix: prefix, suffix: suffix,
		cache: map[string][]int32{}}
	for rank, p := range pairs {
		a, oka := vocab[p[0]]
		b, okb := vocab[p[1]]
		if !oka || !okb {
			return nil, fmt.Errorf("%w: merge %d (%q %q) uses a token outside the vocabulary", ErrFormat, rank, p[0], p[1])
		}
		right := p[1]
		if prefix != "" {
			right = strings.TrimPrefix(right, prefix)
		}
		id, ok := vocab[p[0]+right]
		if !ok {
			return nil, fmt.Errorf("%w: merge %d (%q %q) makes a token outside the vocabulary", ErrFormat, rank, p[0], p[1])
		}
		// A repeated pair keeps its last rank, as a hash map insert does.
		m.merges[uint64(a)<<32|uint64(uint32(b))] = merge{rank: int32(rank), id: id}
	}
	if unk != nil {
		if id, ok := vocab[*unk]; ok {
			m.unk = id
		}
	}
	return m, nil
}

func (m *bpe) Tokenize(dst []int32, word string) []int32 {
	if word == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= bpeCacheWord
	if cacheable {
		m.cacheMu.RLock()
		ids, ok := m.cache[word]
		m.cacheMu.RUnlock()
		if ok {
			return append(dst, ids...)
		}
	}
	w, _ := m.work.Get().(*bpeWork)
	if w == nil {
		w = &bpeWork{}
	}
	base := len(dst)
	dst = m.merge(dst, word, w)
	m.work.Put(w)
	if cacheable {
		ids := append([]int32(nil), dst[base:]...)
		m.cacheMu.Lock()
		if len(m.cache) < bpeCacheSize {
			m.cache[strings.Clone(word)] = ids
		}
		m.cacheMu.Unlock()
	}
	return dst
}

// merge appends the ids of word, computed from scratch.
func (m *bpe) merge(dst []int32, word string, w *bpeWork) []int32 {
	syms := w.syms[:0]
	add := func(id int32) {
		n := int32(len(syms))
		syms = append(syms, bpeSymbol{id: id, prev: n - 1, next: n + 1})
	}
	unk, haveUnk := int32(0), false
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+size]
		first, last := i == 0, i+size == len(word)
		i += size
		key := ch
		if (!first && m.prefix != "") || (last && m.suffix != "") {
			b := w.buf[:0]
			if !first {
				b = append(b, m.prefix...)
			}
			b = append(b, ch...)
			if last {
				b = append(b, m.suffix...)
			}
			w.buf = b
			key = string(b)
		}
		if id, ok := m.vocab[key]; ok {
			if haveUnk {
				add(unk)
				haveUnk = false
			}
			add(id)
			continue
		}
		if m.byteFallback && m.addBytes(&syms, key) {
			continue
		}
		if m.unk >= 0 {
			if haveUnk && !m.fuseUnk {
				add(unk)
			}
			unk, haveUnk = m.unk, true
		}
	}
	if haveUnk {
		add(unk)
	}
	if len(syms) == 0 {
		w.syms = syms
		return dst
	}
	syms[len(syms)-1].next = -1

	h := w.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.pair(syms[i].id, syms[i+1].id); ok {
			h = heapPush(h, bpeCandidate{rank: mg.rank, pos: int32(i), id: mg.id})
		}
	}
	for len(h) > 0 {
		var c bpeCandidate
		c, h = heapPop(h)
		s := &syms[c.pos]
		if s.dead || s.next < 0 {
			continue
		}
		r := &syms[s.next]
		if mg, ok := m.pair(s.id, r.id); !ok || mg.id != c.id {
			// The pair changed since the candidate was queued.
			continue
		}
		s.id = c.id
		r.dead = true
		s.next = r.next
		if s.next >= 0 {
			syms[s.next].prev = c.pos
			if mg, ok := m.pair(s.id, syms[s.next].id); ok {
				h = heapPush(h, bpeCandidate{rank: mg.rank, pos: c.pos, id: mg.id})
			}
		}
		if s.prev >= 0 {
			if mg, ok := m.pair(syms[s.prev].id, s.id); ok {
				h = heapPush(h, bpeCandidate{rank: mg.rank, pos: s.prev, id: mg.id})
			}
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	w.syms, w.heap = syms, h
	return dst
}

// addBytes appends the <0xXX> tokens of the bytes of s, or nothing when one
// of them is missing from the vocabulary.
func (m *bpe) addBytes(syms *[]bpeSymbol, s string) bool {
	const hex = "0123456789ABCDEF"
	var name = [6]byte{'<', '0', 'x', 0, 0, '>'}
	ids := make([]int32, 0, len(s))
	for i := 0; i < len(s); i++ {
		name[3], name[4] = hex[s[i]>>4], hex[s[i]&15]
		id, ok := m.vocab[string(name[:])]
		if !ok {
			return false
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		n := int32(len(*syms))
		*syms = append(*syms, bpeSymbol{id: id, prev: n - 1, next: n + 1})
	}
	return true
}

func (m *bpe) pair(a, b int32) (merge, bool) {
	mg, ok := m.merges[uint64(a)<<32|uint64(uint32(b))]
	return mg, ok
}

// less orders candidates by rank, then leftmost first.
func (c bpeCandidate) less(d bpeCandidate) bool {
	return c.rank < d.rank || (c.rank == d.rank && c.pos < d.pos)
}

func heapPush(h []bpeCandidate, c bpeCandidate) []bpeCandidate {
	h = append(h, c)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []bpeCandidate) (bpeCandidate, []bpeCandidate) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].less(h[m]) {
			m = l
		}
		if r < n && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}

// parseMerges reads merges in either serialisation: "a b" strings (older
// files) or ["a", "b"] pairs (newer ones, which allow spaces in tokens).
func parseMerges(raw []json.RawMessage) ([][2]string, error) {
	out := make([][2]string, len(raw))
	for i, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("%w: merge %d %q is not two tokens separated by a space", ErrFormat, i, s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var p []string
		if err := json.Unmarshal(r, &p); err != nil || len(p) != 2 {
			return nil, fmt.Errorf("%w: merge %d is neither \"a b\" nor [\"a\", \"b\"]", ErrFormat, i)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

func init() {
	modelCtors["BPE"] = func(raw []byte) (Model, error) {
		var cfg struct {
			Dropout      *float64          `json:"dropout"`
			Unk          *string           `json:"unk_token"`
			Prefix       *string           `json:"continuing_subword_prefix"`
			Suffix       *string           `json:"end_of_word_suffix"`
			FuseUnk      bool              `json:"fuse_unk"`
			ByteFallback bool              `json:"byte_fallback"`
			IgnoreMerges bool              `json:"ignore_merges"`
			Vocab        map[string]int32  `json:"vocab"`
			Merges       []json.RawMessage `json:"merges"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		if cfg.Dropout != nil && *cfg.Dropout > 0 {
			// Dropout makes tokenization random: embeddings would not be
			// reproducible.
			return nil, fmt.Errorf("%w: BPE dropout %g (only null or 0)", ErrUnsupported, *cfg.Dropout)
		}
		if cfg.Vocab == nil {
			return nil, errNoField("BPE model", "vocab")
		}
		pairs, err := parseMerges(cfg.Merges)
		if err != nil {
			return nil, err
		}
		var prefix, suffix string
		if cfg.Prefix != nil {
			prefix = *cfg.Prefix
		}
		if cfg.Suffix != nil {
			suffix = *cfg.Suffix
		}
		m, err := newBPE(cfg.Vocab, pairs, cfg.Unk, prefix, suffix)
		if err != nil {
			return nil, err
		}
		m.fuseUnk, m.byteFallback, m.ignoreMerges = cfg.FuseUnk, cfg.ByteFallback, cfg.IgnoreMerges
		return m, nil
	}
}
