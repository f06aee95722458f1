package embed

import (
	"path/filepath"

	"github.com/embedpipe/embedpipe/internal/buildinfo"
	"github.com/embedpipe/embedpipe/schemas"
)

// Provenance describes the vectors e writes. rg are the ranges of an
// int8/uint8 output when computed over the run (nil: the Config's).
func (e *Embedder) Provenance(rg *Ranges) schemas.Provenance {
	info := e.m.Info()
	if abs, err := filepath.Abs(info.Dir); err == nil && info.Dir != "" {
		info.Dir = abs // the same directory from wherever the output is read
	}
	c := e.c
	p := schemas.Provenance{Schema: schemas.ProvenanceSchema,
		Model: schemas.ProvenanceModel{Dir: info.Dir, Hub: info.Hub, Revision: info.Revision, ContentHash: e.m.ContentHash(),
			Arch: info.Arch, Kind: info.Kind},
		Output: string(c.Output), Pooling: info.Pooling, IncludePrompt: info.IncludePrompt,
		ModelNormalize: info.Normalize && !c.Unnormalized, Normalize: c.Normalize, Prompt: c.Prompt,
		MaxLength: c.MaxLength, TruncateLeft: c.TruncateLeft, Dim: c.Dim, Precision: string(c.Precision),
		Embedpipe: buildinfo.String()}
	if c.Output == SentenceEmbedding && c.Dim < c.ModelDim {
		p.TruncateDim = c.Dim
	}
	if rg == nil {
		rg = c.Ranges
	}
	if rg != nil && c.Precision.NeedsRanges() {
		p.Ranges = &schemas.ProvenanceRanges{Starts: rg.starts, Steps: rg.steps}
	}
	return p
}
