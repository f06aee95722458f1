package schemas

import (
	"encoding/json"
	"fmt"
)

// ProvenanceKey is the key of the Parquet key-value metadata (the Arrow
// schema metadata) under which an output records, as JSON, the Provenance
// of its vectors.
const ProvenanceKey = "embedpipe.provenance"

// ProvenanceSchema names the version of Provenance's JSON form.
const ProvenanceSchema = "embedpipe.provenance/v1"

// Provenance says which model and options made a set of vectors, so that a
// query side can reproduce the same vectors and quantization and a reader
// can tell outputs of different models apart.
type Provenance struct {
	Schema string          `json:"schema"`
	Model  ProvenanceModel `json:"model"`
	Output string          `json:"output"`
	// Pooling is the model's pooling ("mean", "cls", …); IncludePrompt false
	// means the prompt's tokens were left out of it.
	Pooling       string `json:"pooling"`
	IncludePrompt bool   `json:"include_prompt"`
	// ModelNormalize is whether the model's own Normalize module was
	// applied (it has one and the run did not leave it out); Normalize
	// whether the vector was L2-normalized again after truncation.
	ModelNormalize bool   `json:"model_normalize"`
	Normalize      bool   `json:"normalize"`
	Prompt         string `json:"prompt,omitempty"`
	// MaxLength is the truncation length in tokens, special tokens
	// included; TruncateLeft says the last tokens were kept.
	MaxLength    int  `json:"max_length"`
	TruncateLeft bool `json:"truncate_left,omitempty"`
	// TruncateDim is the Matryoshka width (0: the model's full Dim).
	TruncateDim int    `json:"truncate_dim,omitempty"`
	Dim         int    `json:"dim"`
	Precision   string `json:"precision"`
	// Ranges are the int8/uint8 calibration ranges the vectors were
	// quantized with, as per-dimension starts and steps
	// (value = start + step × (q + 128) for int8, start + step × q for
	// uint8).
	Ranges *ProvenanceRanges `json:"ranges,omitempty"`
	// Embedpipe is the version and commit of the build that wrote them.
	Embedpipe string `json:"embedpipe"`
}

// ProvenanceModel names the model of a Provenance.
type ProvenanceModel struct {
	Dir         string `json:"dir,omitempty"`
	Hub         string `json:"hub,omitempty"`
	Revision    string `json:"revision,omitempty"`
	ContentHash string `json:"content_hash"`
	Arch        string `json:"arch"`
	Kind        string `json:"kind"`
}

// ProvenanceRanges are calibration ranges in Provenance.
type ProvenanceRanges struct {
	Starts []float32 `json:"starts"`
	Steps  []float32 `json:"steps"`
}

// Metadata returns p as the key-value metadata an output stores.
func (p Provenance) Metadata() map[string]string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("schemas: Provenance does not marshal: %v", err)) // plain data: cannot happen
	}
	return map[string]string{ProvenanceKey: string(b)}
}

// ParseProvenance reads the Provenance an output's metadata md records;
// ok is false when it records none.
func ParseProvenance(md map[string]string) (p Provenance, ok bool, err error) {
	s, ok := md[ProvenanceKey]
	if !ok {
		return p, false, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, true, fmt.Errorf("%w: metadata %s: %v", ErrInvalid, ProvenanceKey, err)
	}
	return p, true, nil
}
