package tokenizer

import (
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
	content, coffs, ok := t.contentOffsets(text)
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

// contentOffsets tokenizes text without special tokens or truncation as
// encodeSequence does, keeping for every id the bytes of text it comes
// from; ok is false where that cannot be traced (see EncodeOffsets).
func (t *Tokenizer) contentOffsets(text string) (ids []int32, offs []Offset, ok bool) {
	wp, isWP := t.model.(*wordPiece)
	if !isWP {
		return nil, nil, false
	}
	for _, r := range t.rawAdded.split(nil, text) {
		if r.id >= 0 {
			ids, offs = append(ids, r.id), append(offs, Offset{r.start, r.end})
			continue
		}
		norm, align, ok := t.alignNormalize(text[r.start:r.end], r.start)
		if !ok {
			return nil, nil, false
		}
		for _, n := range t.normAdded.split(nil, norm) {
			if n.id >= 0 {
				ids, offs = append(ids, n.id), append(offs, Offset{align[n.start].Start, align[n.end-1].Stop})
				continue
			}
			sub := norm[n.start:n.end]
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
					return nil, nil, false // the pre-tokenizer rewrote the text
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
							return nil, nil, false
						}
						l = len(s)
					}
					offs = append(offs, Offset{align[ws+pos].Start, align[ws+pos+l-1].Stop})
					pos += l
				}
				ids = append(ids, wids...)
			}
		}
	}
	return ids, offs, true
}

// alignNormalize normalizes piece, which starts at byte base of the input,
// a character at a time and returns the result with, for each of its
// bytes, the input bytes of the character it came from. ok is false when
// normalizing the characters one by one does not give the normalization of
// the whole piece (a normalizer that looks across characters).
func (t *Tokenizer) alignNormalize(piece string, base int) (norm string, align []Offset, ok bool) {
	if t.normalizer == nil {
		align = make([]Offset, len(piece))
		for i, r := range piece {
			size := utf8.RuneLen(r)
			if size < 0 {
				size = 1
			}
			for k := range size {
				if i+k < len(align) {
					align[i+k] = Offset{base + i, base + i + size}
				}
			}
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
