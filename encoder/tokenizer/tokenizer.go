package tokenizer

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Tokenizer turns text into the ids a model was trained on. It is built by
// Load or FromFile, is immutable afterwards and is safe for concurrent use.
type Tokenizer struct {
	normalizer Normalizer    // nil: text is used as is
	preTok     PreTokenizer  // nil: each piece is one word
	model      Model         // never nil
	post       PostProcessor // nil: no special tokens around the sequence

	// Added tokens are matched on the raw text (normalized=false) or on the
	// normalised pieces between those (normalized=true).
	rawAdded, normAdded *addedMatcher
	addedByID           map[int32]string
	addedByTok          map[string]int32

	chunkable bool // see setChunkable

	kind        string
	padID       int32
	padExplicit bool // padID comes from tokenizer.json's padding section
	vocabSize   int

	scratch sync.Pool // *scratch
}

// scratch holds the buffers of one EncodeTo call, pooled so that steady
// state encoding does not allocate for them.
type scratch struct {
	seq, types []int32
	first      []int32 // the first sequence of a pair, while the second is encoded
	words      []string
	raw, norm  []span
}

// EncodeTo appends to dst the ids of text framed by the post-processor's
// special tokens, and returns the extended slice. With maxLen > 0 the text's
// own ids are cut so that the total (special tokens included) is at most
// maxLen, as Hugging Face truncation with add_special_tokens does; truncated
// says whether ids were cut. maxLen <= 0 means no truncation. When maxLen is
// smaller than the number of special tokens, only the special tokens remain.
func (t *Tokenizer) EncodeTo(dst []int32, text string, maxLen int) (ids []int32, truncated bool) {
	return t.encode(dst, text, maxLen, false)
}

// EncodeLeftTo is EncodeTo with truncation on the left, as Hugging Face's
// truncation_side "left" (TEI's truncation_direction Left): the text's
// last ids are kept and the special tokens still frame them. Finding the
// last ids needs the whole text tokenized, so a long text costs its whole
// length.
func (t *Tokenizer) EncodeLeftTo(dst []int32, text string, maxLen int) (ids []int32, truncated bool) {
	return t.encode(dst, text, maxLen, true)
}

// encode is EncodeTo, cutting the text's ids on the left when left is set.
func (t *Tokenizer) encode(dst []int32, text string, maxLen int, left bool) (ids []int32, truncated bool) {
	st, _ := t.scratch.Get().(*scratch)
	if st == nil {
		st = &scratch{}
	}
	added := 0
	if t.post != nil {
		added = t.post.Added()
	}
	limit := -1
	if maxLen > 0 {
		limit = max(maxLen-added, 0)
	}
	stop := limit
	if left {
		stop = -1 // the last ids are known only at the end
	}
	all := t.encodeSequence(st, text, stop)
	seq := all
	if limit >= 0 && len(seq) > limit {
		if left {
			seq = seq[len(seq)-limit:]
		} else {
			seq = seq[:limit]
		}
		truncated = true
	}
	if t.post != nil {
		dst, st.types = t.post.Process(dst, st.types[:0], seq)
	} else {
		dst = append(dst, seq...)
	}
	st.seq = all[:0]
	t.scratch.Put(st)
	return dst, truncated
}

// EncodePairTo appends to ids and types the ids and token type ids of the
// sentence pair (a, b) laid out by the post-processor's pair template
// ([CLS] a [SEP] b [SEP] with types 0 then 1 for BERT), as Hugging Face's
// encode(a, b) does. With maxLen > 0 the two texts' own ids are cut so that
// the total, special tokens included, is at most maxLen, by Hugging Face's
// longest_first strategy: the longer text loses ids first, and when both
// must be cut each keeps half the room, the longer one (the second on a
// tie) the odd id. Deciding which is longer needs both texts tokenized in
// full, so unlike EncodeTo a pair costs its whole length. maxLen <= 0 means
// no truncation. The error wraps ErrUnsupported when the post-processor
// has no pair layout.
func (t *Tokenizer) EncodePairTo(ids, types []int32, a, b string, maxLen int) (outIDs, outTypes []int32, truncated bool, err error) {
	var pp pairProcessor
	if _, noop := t.post.(noopProcessor); t.post != nil && !noop {
		x, ok := t.post.(pairProcessor)
		if !ok || !hasPair(x) {
			return ids, types, false, fmt.Errorf("%w: the post-processor has no sentence-pair layout", ErrUnsupported)
		}
		pp = x
	}
	st, _ := t.scratch.Get().(*scratch)
	if st == nil {
		st = &scratch{}
	}
	defer t.scratch.Put(st)
	sa := t.encodeSequence(st, a, -1)
	st.first = append(st.first[:0], sa...)
	st.seq = sa[:0]
	sb := t.encodeSequence(st, b, -1)
	sa = st.first
	if maxLen > 0 {
		added := 0
		if pp != nil {
			added = pp.AddedPair()
		}
		na, nb := longestFirst(len(sa), len(sb), max(maxLen-added, 0))
		truncated = na < len(sa) || nb < len(sb)
		sa, sb = sa[:na], sb[:nb]
	}
	if pp != nil {
		ids, types, _ = pp.ProcessPair(ids, types, sa, sb)
	} else {
		// Without a post-processor Hugging Face concatenates the two,
		// the second with type id 1.
		ids = append(append(ids, sa...), sb...)
		for range sa {
			types = append(types, 0)
		}
		for range sb {
			types = append(types, 1)
		}
	}
	st.seq = sb[:0]
	return ids, types, truncated, nil
}

// hasPair reports whether a pair processor has a pair layout at all (a
// layout may add no special tokens).
func hasPair(p pairProcessor) bool {
	_, _, ok := p.ProcessPair(nil, nil, nil, nil)
	return ok
}

// longestFirst returns the lengths to which two sequences of na and nb ids
// are cut to fit budget ids together, as the longest_first strategy of
// Hugging Face tokenizers (truncate_encodings) computes them.
func longestFirst(na, nb, budget int) (int, int) {
	if na+nb <= budget {
		return na, nb
	}
	n1, n2 := na, nb
	swap := n1 > n2
	if swap {
		n1, n2 = n2, n1
	}
	if n1 > budget {
		n2 = n1
	} else {
		n2 = max(n1, budget-n1)
	}
	if n1+n2 > budget {
		n1 = budget / 2
		n2 = n1 + budget%2
	}
	if swap {
		n1, n2 = n2, n1
	}
	return min(n1, na), min(n2, nb)
}

// encodeSequence returns the model ids of text without special tokens. With
// limit >= 0 it stops once it has more than limit ids: words are tokenized
// independently, so the ids after the cut cannot change those before it.
func (t *Tokenizer) encodeSequence(st *scratch, text string, limit int) []int32 {
	seq := st.seq[:0]
	st.raw = t.rawAdded.split(st.raw[:0], text)
	for _, r := range st.raw {
		if limit >= 0 && len(seq) > limit {
			break
		}
		if r.id >= 0 {
			seq = append(seq, r.id)
			continue
		}
		piece := text[r.start:r.end]
		if !t.chunkable || limit < 0 {
			seq = t.encodePiece(st, seq, piece, r.start == 0, limit)
			continue
		}
		// A long document truncated to a few hundred ids needs only its
		// beginning: normalise and split it a chunk at a time.
		chunk := 16 * (limit + 1)
		for len(piece) > 0 && len(seq) <= limit {
			n := chunkEnd(piece, chunk)
			seq = t.encodePiece(st, seq, piece[:n], false, limit)
			piece = piece[n:]
		}
	}
	return seq
}

// encodePiece appends the ids of a piece of text that holds no
// non-normalised added token. atStart says whether the piece begins the
// input.
func (t *Tokenizer) encodePiece(st *scratch, seq []int32, piece string, atStart bool, limit int) []int32 {
	if t.normalizer != nil {
		piece = t.normalizer.Normalize(piece)
	}
	st.norm = t.normAdded.split(st.norm[:0], piece)
	for _, n := range st.norm {
		if limit >= 0 && len(seq) > limit {
			break
		}
		if n.id >= 0 {
			seq = append(seq, n.id)
			continue
		}
		sub := piece[n.start:n.end]
		if t.preTok == nil {
			seq = t.model.Tokenize(seq, sub)
			continue
		}
		if sp, ok := t.preTok.(segmentPreTokenizer); ok {
			st.words = sp.PreTokenizeSegment(st.words[:0], sub, atStart && n.start == 0)
		} else {
			st.words = t.preTok.PreTokenize(st.words[:0], sub)
		}
		for _, w := range st.words {
			if limit >= 0 && len(seq) > limit {
				break
			}
			if w != "" {
				seq = t.model.Tokenize(seq, w)
			}
		}
		clear(st.words) // do not keep the text alive from the pool
	}
	return seq
}

// chunkEnd returns where the first chunk of s ends: at the first space at
// or after byte size that sits between two characters that are not white
// space, or at len(s). Such a space starts a word for the BERT and GPT-2
// pre-tokenizers alike, and is a starter for Unicode normalisation, so the
// chunks tokenize exactly as the whole would.
func chunkEnd(s string, size int) int {
	for p := max(size, 1); p < len(s)-1; p++ {
		if s[p] != ' ' {
			continue
		}
		before, _ := utf8.DecodeLastRuneInString(s[:p])
		after, _ := utf8.DecodeRuneInString(s[p+1:])
		if !unicode.IsSpace(before) && !unicode.IsSpace(after) {
			return p
		}
	}
	return len(s)
}

// setChunkable decides whether long pieces may be encoded a chunk at a
// time: only for the stages whose output chunkEnd's boundaries are known
// not to change, and when no normalised added token could straddle a
// boundary.
func (t *Tokenizer) setChunkable() {
	normOK := t.normalizer == nil
	if _, ok := t.normalizer.(*bertNormalizer); ok {
		normOK = true
	}
	preOK := false
	switch p := t.preTok.(type) {
	case bertPreTokenizer:
		preOK = true
	case byteLevel:
		preOK = p.useRegex
	}
	t.chunkable = normOK && preOK && t.normAdded.empty()
}

// IDToToken returns the token of id (an added token or a vocabulary entry),
// or "" when id is not a token of this tokenizer.
func (t *Tokenizer) IDToToken(id int32) string {
	if s, ok := t.addedByID[id]; ok {
		return s
	}
	return t.model.IDToToken(id)
}

// TokenToID returns the id of tok (an added token or a vocabulary entry).
func (t *Tokenizer) TokenToID(tok string) (int32, bool) {
	if id, ok := t.addedByTok[tok]; ok {
		return id, true
	}
	return t.model.TokenToID(tok)
}

// Kind is the type of the model: "WordPiece", "Unigram", "BPE" or
// "WordLevel".
func (t *Tokenizer) Kind() string { return t.kind }

// PadID is the id of the padding token: the one of tokenizer.json's padding
// section, else tokenizer_config.json's pad_token (with Load), else the
// first of the usual names ([PAD], <pad>, <|endoftext|>, </s>) that exists, else 0.
func (t *Tokenizer) PadID() int32 { return t.padID }

// VocabSize is one more than the largest id EncodeTo can return: the size
// of the model's vocabulary including the added tokens.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }
