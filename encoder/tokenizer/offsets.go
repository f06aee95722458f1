package tokenizer

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Offset is the byte range [Start, Stop) of the input text a token comes
// from, as Hugging Face tokenizers' offsets (in bytes, as the Rust library
// and text-embeddings-inference give them).
type Offset struct{ Start, Stop int }

// EncodeOffsets returns the ids EncodeTo gives for text and maxLen, and for
// each id the bytes of text it comes from. known[i] is false for the
// special tokens the post-processor adds. offs is nil when the tokenizer's
// stages cannot be aligned back to the text: only WordPiece models are,
// with a normalizer that works a character at a time (BertNormalizer
// does) and pre-tokenizers that cut the normalized text into substrings.
func (t *Tokenizer) EncodeOffsets(text string, maxLen int) (ids []int32, offs []Offset, known []bool) {
	ids, _ = t.EncodeTo(nil, text, maxLen)
	if _, isWP := t.model.(*wordPiece); !isWP {
		// Only WordPiece offsets are checked against Hugging Face's
		// (TestOffsetRefs); ContentOffsets traces byte-level BPE too.
		return ids, nil, nil
	}
	content, coffs, _, ok := t.contentOffsets(text)
	if !ok {
		return ids, nil, nil
	}
	// Which positions of ids hold the text's own ids: the post-processor
	// lays out markers -1-j for content id j.
	added := 0
	if t.post != nil {
		added = t.post.Added()
	}
	k := len(ids) - added
	if k < 0 || k > len(content) {
		return ids, nil, nil
	}
	marks := make([]int32, k)
	for j := range marks {
		marks[j] = -1 - int32(j)
	}
	laid := marks
	if t.post != nil {
		laid, _ = t.post.Process(nil, nil, marks)
	}
	if len(laid) != len(ids) {
		return ids, nil, nil
	}
	offs, known = make([]Offset, len(ids)), make([]bool, len(ids))
	for i, m := range laid {
		if m >= 0 {
			continue
		}
		j := int(-1 - m)
		if content[j] != ids[i] {
			return ids, nil, nil // the alignment walk disagrees with EncodeTo
		}
		offs[i], known[i] = coffs[j], true
	}
	return ids, offs, known
}

// ContentOffsets returns the ids of text's own tokens (as EncodeTo gives
// them, without the special tokens and without truncation), the bytes of
// text each comes from, and whether each begins a word of the
// pre-tokenizer: for WordPiece a token that is not a continuing subword
// ("##x"), for byte-level BPE the first token of a pre-tokenized word (a
// word's leading space, as in "Ġworld", belongs to it, and to its
// offsets, as Hugging Face's ByteLevel pre-tokenizer keeps it). Added
// tokens begin words. ok is false where the stages cannot be traced back
// to the text: models other than WordPiece and byte-level BPE, normalizers
// that look across characters, pre-tokenizers other than substring ones
// and ByteLevel without add_prefix_space. The ids are checked against
// EncodeTo's, so a trace that disagrees gives ok false, never wrong
// offsets.
func (t *Tokenizer) ContentOffsets(text string) (ids []int32, offs []Offset, wordStart []bool, ok bool) {
	ids, offs, wordStart, ok = t.contentOffsets(text)
	if !ok {
		return nil, nil, nil, false
	}
	st, _ := t.scratch.Get().(*scratch)
	if st == nil {
		st = &scratch{}
	}
	want := t.encodeSequence(st, text, -1)
	same := slices.Equal(ids, want)
	st.seq = want[:0]
	t.scratch.Put(st)
	if !same {
		return nil, nil, nil, false
	}
	return ids, offs, wordStart, true
}

// contentOffsets tokenizes text without special tokens or truncation as
// encodeSequence does, keeping for every id the bytes of text it comes
// from and whether it begins a word; ok is false where that cannot be
// traced (see ContentOffsets).
func (t *Tokenizer) contentOffsets(text string) (ids []int32, offs []Offset, word []bool, ok bool) {
	wp, isWP := t.model.(*wordPiece)
	bp, isBPE := t.model.(*bpe)
	bl, isBL := t.preTok.(byteLevel)
	if isBPE && (!isBL || bl.addPrefixSpace || bp.prefix != "" || bp.suffix != "") {
		return nil, nil, nil, false
	}
	if !isWP && !isBPE {
		return nil, nil, nil, false
	}
	for _, r := range t.rawAdded.split(nil, text) {
		if r.id >= 0 {
			ids, offs, word = append(ids, r.id), append(offs, Offset{r.start, r.end}), append(word, true)
			continue
		}
		norm, align, ok := t.alignNormalize(text[r.start:r.end], r.start)
		if !ok {
			return nil, nil, nil, false
		}
		for _, n := range t.normAdded.split(nil, norm) {
			if n.id >= 0 {
				ids, offs, word = append(ids, n.id), append(offs, Offset{align[n.start].Start, align[n.end-1].Stop}), append(word, true)
				continue
			}
			sub := norm[n.start:n.end]
			if isBPE {
				// ByteLevel cuts sub into substrings (GPT-2's pattern, or
				// none) and spells each byte as one character, so a
				// token of k characters stands for k bytes of its word.
				for i := 0; i < len(sub); {
					l := len(sub) - i
					if bl.useRegex {
						l = gpt2Match(sub, i)
					}
					w, ws := sub[i:i+l], n.start+i
					i += l
					wids := bp.Tokenize(nil, byteLevelString(w))
					pos := 0
					for k, id := range wids {
						tl := utf8.RuneCountInString(bp.IDToToken(id))
						if tl == 0 || pos+tl > len(w) || byteLevelString(w[pos:pos+tl]) != bp.IDToToken(id) {
							return nil, nil, nil, false
						}
						offs = append(offs, Offset{align[ws+pos].Start, align[ws+pos+tl-1].Stop})
						word = append(word, k == 0)
						pos += tl
					}
					if pos != len(w) {
						return nil, nil, nil, false // bytes without a token
					}
					ids = append(ids, wids...)
				}
				continue
			}
			words := []string{sub}
			if sp, seg := t.preTok.(segmentPreTokenizer); seg {
				words = sp.PreTokenizeSegment(nil, sub, r.start == 0 && n.start == 0)
			} else if t.preTok != nil {
				words = t.preTok.PreTokenize(nil, sub)
			}
			cur := n.start
			for _, w := range words {
				if w == "" {
					continue
				}
				i := strings.Index(norm[cur:n.end], w)
				if i < 0 {
					return nil, nil, nil, false // the pre-tokenizer rewrote the text
				}
				ws := cur + i
				cur = ws + len(w)
				wids := wp.Tokenize(nil, w)
				pos := 0
				for _, id := range wids {
					l := len(w) // the unknown token stands for the whole word
					if !(id == wp.unk && len(wids) == 1) {
						s := wp.IDToToken(id)
						if pos > 0 {
							s = strings.TrimPrefix(s, wp.prefix)
						}
						if !strings.HasPrefix(w[pos:], s) || s == "" {
							return nil, nil, nil, false
						}
						l = len(s)
					}
					offs = append(offs, Offset{align[ws+pos].Start, align[ws+pos+l-1].Stop})
					word = append(word, pos == 0)
					pos += l
				}
				ids = append(ids, wids...)
			}
		}
	}
	return ids, offs, word, true
}

// alignNormalize normalizes piece, which starts at byte base of the input,
// a character at a time and returns the result with, for each of its
// bytes, the input bytes of the character it came from. ok is false when
// normalizing the characters one by one does not give the normalization of
// the whole piece (a normalizer that looks across characters).
func (t *Tokenizer) alignNormalize(piece string, base int) (norm string, align []Offset, ok bool) {
	if t.normalizer == nil {
		align = make([]Offset, len(piece))
		for i := 0; i < len(piece); {
			// The bytes decoded, not the rune's length: an invalid byte
			// decodes to U+FFFD, which would count 3.
			_, size := utf8.DecodeRuneInString(piece[i:])
			for k := range size {
				align[i+k] = Offset{base + i, base + i + size}
			}
			i += size
		}
		return piece, align, true
	}
	var b strings.Builder
	for i := 0; i < len(piece); {
		_, size := utf8.DecodeRuneInString(piece[i:])
		nr := t.normalizer.Normalize(piece[i : i+size])
		b.WriteString(nr)
		for range len(nr) {
			align = append(align, Offset{base + i, base + i + size})
		}
		i += size
	}
	norm = b.String()
	return norm, align, norm == t.normalizer.Normalize(piece)
}
