package encoder

import (
	"context"
	"fmt"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/tokenizer"
)

// Span is a run of tokens [Lo, Hi) of sequence Seq of a Batch, positions
// counted from the sequence's first token (special tokens included).
type Span struct{ Seq, Lo, Hi int }

// EmbedSpansBatch encodes b once and writes one vector per span into dst
// (len(spans)×Dim(), row-major): the model's pooling over the span's
// contextual token vectors, then its Dense modules and its Normalize
// module (unless b.Unnormalized), exactly as EmbedBatch treats a whole
// sequence. This is late chunking: every span's tokens have seen the whole
// sequence. Weighted-mean pooling weighs a span's tokens 1, 2, … from its
// first; CLS pooling takes the span's first token and last-token pooling
// its last. b.PoolSkip does not apply: a span pools all of its tokens. Safe
// for concurrent use; b and spans are only read.
func (m *Model) EmbedSpansBatch(ctx context.Context, b *Batch, spans []Span, dst []float32) error {
	if m.info.Kind != KindEmbedding {
		return fmt.Errorf("%w: %s is a %s model: %s", ErrUnsupported, m.info.Dir, m.info.Kind, kindHint[m.info.Kind])
	}
	if err := checkBatch(b, 0); err != nil {
		return err
	}
	n, dim := len(spans), m.info.Dim
	if len(dst) < n*dim {
		return fmt.Errorf("%w: destination holds %d floats, need %d spans × %d", ErrInput, len(dst), n, dim)
	}
	st := b.starts()
	for i, sp := range spans {
		if sp.Seq < 0 || sp.Seq >= b.Len() || sp.Lo < 0 || sp.Hi <= sp.Lo || sp.Hi > st[sp.Seq+1]-st[sp.Seq] {
			return fmt.Errorf("%w: span %d (sequence %d, tokens %d to %d) is empty or outside the batch", ErrInput, i, sp.Seq, sp.Lo, sp.Hi)
		}
	}
	return m.withHidden(ctx, b, func(s *callScratch) error {
		return m.poolTo(s, dst, n, func(i int) (lo, hi int) {
			o := st[spans[i].Seq]
			return o + spans[i].Lo, o + spans[i].Hi
		}, 0, b.Unnormalized, "span")
	})
}

// TextTokens returns the tokens of text alone, as the model's tokenizer
// gives them without a prompt, special tokens or truncation: their ids,
// the bytes of text each comes from, and whether each begins a word (see
// tokenizer.Tokenizer.ContentOffsets). The error wraps ErrUnsupported,
// with the reason, when the tokenizer cannot trace its tokens back to the
// text, or lower-casing (do_lower_case) changes the text's length.
func (m *Model) TextTokens(text string) (ids []int32, offs []tokenizer.Offset, wordStart []bool, err error) {
	in := text
	if m.lowerCase {
		in = strings.ToLower(text)
		if len(in) != len(text) {
			return nil, nil, nil, fmt.Errorf("%w: %s lower-cases its input (do_lower_case), which changes this text's length: its tokens have no offsets into it", ErrUnsupported, m.info.Dir)
		}
	}
	ids, offs, wordStart, ok := m.tok.ContentOffsets(in)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: the %s tokenizer of %s cannot trace its tokens back to the text (offsets exist for WordPiece and byte-level BPE tokenizers)", ErrUnsupported, m.tok.Kind(), m.info.Dir)
	}
	return ids, offs, wordStart, nil
}
