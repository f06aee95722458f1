package encoder

import (
	"errors"

	"github.com/embedpipe/embedpipe/encoder/arch"
)

// Sentinel errors of package encoder. Returned errors wrap one of them with
// %w and name the file, key, tensor, prompt or sequence concerned. The
// config, weight, input and unsupported errors are those of package arch, so
// errors.Is works with either name.
var (
	// ErrModelDir reports a model directory that is missing files Load
	// needs; the error names them.
	ErrModelDir = errors.New("incomplete model directory")
	// ErrConfig reports a missing or invalid value in one of the model's
	// JSON files.
	ErrConfig = arch.ErrConfig
	// ErrUnsupported reports a model_type, module or option not implemented.
	ErrUnsupported = arch.ErrUnsupported
	// ErrWeights reports a missing or mis-shaped tensor.
	ErrWeights = arch.ErrWeights
	// ErrInput reports a batch that cannot be embedded: malformed starts,
	// an empty sequence, ids out of range, a destination too small.
	ErrInput = arch.ErrInput
	// ErrNonFinite reports an embedding that holds NaN or Inf: it is never
	// handed out as a result. Bad weights give it; so did a non-positive
	// normalization epsilon, which Load now refuses.
	ErrNonFinite = errors.New("embedding is not finite")
	// ErrPrompt reports a prompt name the model does not define.
	ErrPrompt = errors.New("unknown prompt")
)
