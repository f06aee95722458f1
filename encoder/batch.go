package encoder

// Batch is a set of token id sequences laid end to end: sequence i is
// IDs[Starts[i]:Starts[i+1]]. Starts has one entry more than there are
// sequences (Starts[0] == 0) once anything was added; the zero Batch is
// empty and ready to use. A Batch is reused across calls by Reset, which
// keeps its memory.
//
// Types holds the token type (segment) id of every token, for sentence
// pairs (Model.AppendPairTo); it is empty when every token has type 0, and
// otherwise exactly as long as IDs.
type Batch struct {
	IDs    []int32
	Types  []int32
	Starts []int
	// PoolSkip is the number of leading tokens of every sequence that the
	// pooling leaves out: sentence-transformers' prompt_length for a model
	// whose Pooling module says include_prompt false (see
	// Model.PromptPoolSkip). The encoder still sees those tokens; CLS and
	// last-token pooling are not affected, as in sentence-transformers.
	// Zero pools every token.
	PoolSkip int
	// Unnormalized leaves out the model's Normalize module: EmbedBatch
	// writes the vectors as the pooling and the Dense modules give them,
	// as TEI's normalize=false does. It changes nothing for a model
	// without a Normalize module.
	Unnormalized bool
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.IDs = b.IDs[:0]
	b.Types = b.Types[:0]
	b.Starts = append(b.Starts[:0], 0)
	b.PoolSkip = 0
	b.Unnormalized = false
}

// Add appends one sequence (a copy of ids) of token type 0.
func (b *Batch) Add(ids []int32) {
	if len(b.Starts) == 0 {
		b.Starts = append(b.Starts, 0)
	}
	b.IDs = append(b.IDs, ids...)
	if len(b.Types) > 0 {
		for len(b.Types) < len(b.IDs) {
			b.Types = append(b.Types, 0)
		}
	}
	b.Starts = append(b.Starts, len(b.IDs))
}

// Len returns the number of sequences.
func (b *Batch) Len() int {
	if len(b.Starts) == 0 {
		return 0
	}
	return len(b.Starts) - 1
}

// Tokens returns the number of tokens of all sequences together.
func (b *Batch) Tokens() int { return len(b.IDs) }

// Seq returns sequence i (a view into IDs).
func (b *Batch) Seq(i int) []int32 { return b.IDs[b.Starts[i]:b.Starts[i+1]] }

// types returns the token types to hand to the encoder, nil when every
// token has type 0.
func (b *Batch) types() []int32 {
	if len(b.Types) == 0 {
		return nil
	}
	return b.Types
}

// starts returns the start offsets to hand to the encoder, which for an
// untouched zero Batch is the single offset 0.
func (b *Batch) starts() []int {
	if len(b.Starts) == 0 {
		return zeroStart[:]
	}
	return b.Starts
}

var zeroStart = [1]int{0}
