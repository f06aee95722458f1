package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

func init() {
	normalizerCtors["Precompiled"] = newPrecompiledFromJSON
}

// errCharsmap is the root of every error about a corrupt
// precompiled_charsmap blob; it is an ErrFormat.
var errCharsmap = fmt.Errorf("%w: precompiled_charsmap", ErrFormat)

// precompiledMaxKey is the longest key ever looked up in the trie: a grapheme
// cluster is looked up whole only while it is shorter than 6 bytes, and a
// single character is at most 4 bytes. Validation walks the trie to this
// depth, so every lookup Normalize can make has been checked.
const precompiledMaxKey = 5

// precompiled is the normalizer of SentencePiece models
// ("precompiled_charsmap"): a darts-clone double-array trie over UTF-8 byte
// strings whose leaves point into a pool of NUL-terminated replacement
// strings. It reproduces Hugging Face tokenizers (spm_precompiled): the text
// is cut into extended grapheme clusters; a cluster shorter than 6 bytes
// whose bytes begin with a key of the trie is replaced whole by the
// replacement of the shortest such key; any other cluster is rewritten
// character by character, each character that begins with a key being
// replaced and the others kept. A precompiled is immutable and safe for
// concurrent use.
type precompiled struct {
	units []uint32 // the double array
	pool  string   // NUL-terminated replacements, valid UTF-8

	// ascii caches the lookup of each one-byte key, for the fast path of
	// Normalize over ASCII text.
	ascii [128]struct {
		repl   string
		mapped bool
	}
}

// precompiledJSON is the tokenizer.json shape of a Precompiled normalizer.
type precompiledJSON struct {
	Charsmap *string `json:"precompiled_charsmap"`
}

func newPrecompiledFromJSON(raw []byte) (Normalizer, error) {
	j, err := decodeConfig[precompiledJSON](raw, "Precompiled normalizer")
	if err != nil {
		return nil, err
	}
	if j.Charsmap == nil {
		return nil, fmt.Errorf("%w: field is missing or null", errCharsmap)
	}
	blob, err := base64.StdEncoding.DecodeString(*j.Charsmap)
	if err != nil {
		return nil, fmt.Errorf("%w: not valid base64: %v", errCharsmap, err)
	}
	p, err := newPrecompiled(blob)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newPrecompiled parses a SentencePiece precompiled_charsmap blob: a
// little-endian uint32 byte length of the trie, the trie as little-endian
// uint32 units, then the replacement pool. It returns an error naming the
// defect for a blob that is truncated, whose pool is not UTF-8, or whose trie
// reaches outside the array or points outside the pool, so that Normalize
// never has to trust the blob.
func newPrecompiled(blob []byte) (*precompiled, error) {
	if len(blob) < 4 {
		return nil, fmt.Errorf("%w: %d bytes is too short for the trie length header", errCharsmap, len(blob))
	}
	trieBytes := uint64(binary.LittleEndian.Uint32(blob))
	// Like spm_precompiled, a length that is not a multiple of 4 leaves its
	// remainder to the pool.
	n := trieBytes / 4
	if n*4 > uint64(len(blob)-4) {
		return nil, fmt.Errorf("%w: trie length %d exceeds the %d bytes that follow the header", errCharsmap, trieBytes, len(blob)-4)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the trie is empty", errCharsmap)
	}
	units := make([]uint32, n)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	pool := blob[4+4*n:]
	if !utf8.Valid(pool) {
		return nil, fmt.Errorf("%w: the replacement pool is not valid UTF-8", errCharsmap)
	}
	p := &precompiled{units: units, pool: string(pool)}
	if err := p.validate(); err != nil {
		return nil, err
	}
	for c := range p.ascii {
		p.ascii[c].repl, p.ascii[c].mapped = p.lookup(string(rune(c)))
	}
	return p, nil
}

// Double-array unit fields, as darts-clone packs them.
func dartsHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func dartsValue(u uint32) uint32  { return u & (1<<31 - 1) }
func dartsLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func dartsOffset(u uint32) uint64 { return uint64(u>>10) << ((u & (1 << 9)) >> 6) }

// validate walks every path of at most precompiledMaxKey bytes from the root
// and checks that each leaf it reaches lies inside the array and points to a
// character boundary inside the pool; a child outside the array is a
// mismatch for lookup, so it is skipped. The walk remembers the largest
// remaining depth each node was explored with, so a corrupt array whose
// paths converge costs at most units×depth×255 probes.
func (p *precompiled) validate() error {
	seen := make([]int8, len(p.units)) // remaining depth + 1; 0: not yet
	var walk func(pos uint64, left int) error
	walk = func(pos uint64, left int) error {
		if pos < uint64(len(seen)) {
			if int(seen[pos]) > left {
				return nil
			}
			seen[pos] = int8(left + 1)
		}
		for c := uint64(1); c < 256; c++ {
			child := pos ^ c
			if child >= uint64(len(p.units)) {
				continue
			}
			u := p.units[child]
			if uint64(dartsLabel(u)) != c {
				continue
			}
			next := child ^ dartsOffset(u)
			if dartsHasLeaf(u) {
				if next >= uint64(len(p.units)) {
					return fmt.Errorf("%w: leaf of unit %d lies outside the %d-unit trie", errCharsmap, child, len(p.units))
				}
				v := dartsValue(p.units[next])
				if uint64(v) > uint64(len(p.pool)) {
					return fmt.Errorf("%w: replacement offset %d lies outside the %d-byte pool", errCharsmap, v, len(p.pool))
				}
				if int(v) < len(p.pool) && !utf8.RuneStart(p.pool[v]) {
					return fmt.Errorf("%w: replacement offset %d splits a UTF-8 character", errCharsmap, v)
				}
				continue // a lookup stops at its first leaf
			}
			if left > 1 {
				if err := walk(next, left-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dartsOffset(p.units[0]), precompiledMaxKey)
}

// lookup returns the replacement of the shortest key of the trie that is a
// prefix of key. As in darts-clone, a NUL byte ends the key.
func (p *precompiled) lookup(key string) (string, bool) {
	a := p.units
	pos := dartsOffset(a[0])
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint64(c)
		if pos >= uint64(len(a)) {
			return "", false
		}
		u := a[pos]
		if uint64(dartsLabel(u)) != uint64(c) {
			return "", false
		}
		pos ^= dartsOffset(u)
		if dartsHasLeaf(u) {
			if pos >= uint64(len(a)) {
				return "", false
			}
			v := uint64(dartsValue(a[pos]))
			if v > uint64(len(p.pool)) {
				return "", false
			}
			r := p.pool[v:]
			if end := strings.IndexByte(r, 0); end >= 0 {
				r = r[:end]
			}
			return r, true
		}
	}
	return "", false
}

// Normalize applies the charsmap to s. Bytes of s that are not valid UTF-8
// are first replaced by U+FFFD, since the trie and every later stage work on
// characters.
func (p *precompiled) Normalize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if p.asciiRun(s) == len(s) {
		return s // nothing to rewrite: spare the copy
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for len(s) > 0 {
		// Fast path: an ASCII character followed by another ASCII
		// character (or by nothing) is a cluster of its own, unless it is
		// the CR of a CR LF.
		if i := p.asciiRun(s); i > 0 {
			b.WriteString(s[:i])
			s = s[i:]
			continue
		}
		if c := s[0]; c < utf8.RuneSelf && (len(s) == 1 || (s[1] < utf8.RuneSelf && (c != '\r' || s[1] != '\n'))) {
			b.WriteString(p.ascii[c].repl) // asciiRun stopped here, so it is mapped
			s = s[1:]
			continue
		}
		n := nextGraphemeLen(s)
		g := s[:n]
		s = s[n:]
		// Whole-cluster lookup with the shortest matching key, even when that
		// key covers only part of the cluster, is what Hugging Face
		// (spm_precompiled) does rather than SentencePiece's longest match;
		// reference ids depend on the whole-cluster lookup (tiny-xlmr row
		// 1465, where "e" + U+0300 becomes "è").
		if len(g) < 6 {
			if r, ok := p.lookup(g); ok {
				b.WriteString(r)
				continue
			}
		}
		for i := 0; i < len(g); {
			_, w := utf8.DecodeRuneInString(g[i:])
			c := g[i : i+w]
			if r, ok := p.lookup(c); ok {
				b.WriteString(r)
			} else {
				b.WriteString(c)
			}
			i += w
		}
	}
	return b.String()
}

// asciiRun returns the length of the prefix of s made of ASCII characters
// that are clusters of their own and that the charsmap leaves unchanged.
func (p *precompiled) asciiRun(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || p.ascii[c].mapped {
			return i
		}
		if i+1 < len(s) && (s[i+1] >= utf8.RuneSelf || (c == '\r' && s[i+1] == '\n')) {
			return i // may begin a longer cluster
		}
		i++
	}
	return i
}
