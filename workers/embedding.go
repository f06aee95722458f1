package workers

import (
	"fmt"
	"hash/fnv"
	"math"
	"sync"

	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/schemas"
)

// RequestOptions converts an embed request's options into the embedding
// seam's; the service and every front end built on it use it, so a
// request means the same thing whichever way it comes. modelNormalizes
// says whether the model ends with a Normalize module (see SetNormalize).
// Options that depend on the model are checked by embed.Resolve.
func RequestOptions(r schemas.EmbedRequest, modelNormalizes bool) (embed.Options, error) {
	p, err := embed.ParsePrecision(r.Precision)
	if err != nil {
		return embed.Options{}, err
	}
	o := embed.Options{Prompt: r.Prompt, PromptName: r.PromptName, TruncateDim: r.TruncateDim, Precision: p}
	SetNormalize(&o, r.Normalize, modelNormalizes)
	if len(r.Ranges) > 0 {
		if len(r.Ranges) != 2 {
			return embed.Options{}, fmt.Errorf("%w: ranges has %d rows, want 2 ([[min…],[max…]])", embed.ErrRanges, len(r.Ranges))
		}
		o.Ranges = [2][]float32{r.Ranges[0], r.Ranges[1]}
	}
	if p.NeedsRanges() && o.Ranges[0] == nil {
		return embed.Options{}, fmt.Errorf("%w: precision %s needs ranges [[min…],[max…]] in the request: one request cannot calibrate them", embed.ErrRanges, p)
	}
	return o, nil
}

// SetNormalize applies a request's normalize flag to o, the one reading of
// it that the NATS service and the HTTP API share: nil keeps the model's
// choice; false leaves out the model's Normalize module and normalizes
// nothing (embed.Options.Unnormalized, TEI's normalize=false: the vectors
// as the pooling and the Dense modules give them, cut but not
// renormalized by a truncate-dim); true normalizes the output vector,
// which for a model with a Normalize module (modelNormalizes) is already
// its choice.
func SetNormalize(o *embed.Options, normalize *bool, modelNormalizes bool) {
	switch {
	case normalize == nil:
	case !*normalize:
		o.Normalize, o.Unnormalized = nil, true
	case !modelNormalizes:
		yes := true
		o.Normalize = &yes
	}
}

// maxEmbedders bounds the resolved option sets a service keeps.
const maxEmbedders = 256

// embedders caches one embed.Embedder per distinct set of options, so that
// requests with the same options share an Embedder (its scratch pool, and
// one encoder call per batch of such requests).
type embedders struct {
	mu sync.Mutex
	m  map[string]*embed.Embedder
}

func (c *embedders) get(m embed.Model, o embed.Options) (*embed.Embedder, error) {
	k := optionsKey(o)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		return e, nil
	}
	e, err := embed.New(m, o)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) >= maxEmbedders {
		c.m = map[string]*embed.Embedder{}
	}
	c.m[k] = e
	return e, nil
}

// optionsKey identifies a set of options; calibration ranges count by
// their bits.
func optionsKey(o embed.Options) string {
	h := fnv.New64a()
	for _, row := range o.Ranges {
		fmt.Fprintf(h, "%d:", len(row))
		for _, v := range row {
			b := math.Float32bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
		}
	}
	norm := "model"
	if o.Normalize != nil {
		norm = fmt.Sprint(*o.Normalize)
	}
	return fmt.Sprintf("%s|%q|%q|%d|%d|%s|%t|%t|%s|%d|%d|%x", o.Output, o.Prompt, o.PromptName, o.MaxLength, o.TruncateDim, norm,
		o.Unnormalized, o.TruncateLeft, o.Precision, o.BatchSize, o.MaxBatchTokens, h.Sum64())
}

// qvectors are n vectors in an Embedder's output precision.
type qvectors struct {
	p   embed.Precision
	dim int
	raw []byte
}

// quantized converts n float vectors of e into its output precision.
func quantized(e *embed.Embedder, v []float32, n int) (qvectors, error) {
	q := qvectors{p: e.Config().Precision, dim: e.Dim(), raw: make([]byte, n*e.RowBytes())}
	return q, e.QuantizeTo(q.raw, v, n, nil)
}

// width is the number of values of one vector.
func (q qvectors) width() int { return q.p.Width(q.dim) }

// values returns the n vectors' values as numbers (see
// embed.Precision.ValuesTo), n×width().
func (q qvectors) values(n int) []float32 {
	out := make([]float32, n*q.width())
	_ = q.p.ValuesTo(out, q.raw, n, q.dim) // sizes match by construction
	return out
}
