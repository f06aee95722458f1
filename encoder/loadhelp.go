package encoder

import (
	"fmt"
	"path/filepath"
	"strings"
)

// missingModelError explains a --model that is neither a directory nor a
// Hugging Face Hub id, with what to give instead. A bare name such as
// "all-MiniLM-L6-v2" is usually a Hub id without its organization.
func missingModelError(src string) error {
	if !strings.ContainsAny(src, `/\`) && !strings.HasPrefix(src, ".") {
		return fmt.Errorf("%s: no such directory; a Hugging Face Hub model needs its full id org/name "+
			"(such as sentence-transformers/%s), a local model the path of its directory", src, src)
	}
	return fmt.Errorf("%s: no such directory; want a model directory (config.json, model.safetensors, "+
		"tokenizer.json, as saved by sentence-transformers or transformers) or a Hugging Face Hub id org/name", src)
}

// otherWeightsHint returns advice for a directory whose weights are in a
// format Load does not read (PyTorch pickles, TensorFlow, Flax, ONNX):
// how to convert them to safetensors. It is "" when there are none.
func otherWeightsHint(dir string) string {
	var found []string
	for _, pattern := range []string{"pytorch_model*.bin", "tf_model.h5", "flax_model.msgpack", "model.onnx", "onnx/model.onnx"} {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range m {
			if rel, err := filepath.Rel(dir, p); err == nil {
				found = append(found, rel)
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("; the directory has %s, which embedpipe does not read (it loads safetensors only, never "+
		"Python pickles): convert with python -c \"from transformers import AutoModel; "+
		"AutoModel.from_pretrained('%s').save_pretrained('%s', safe_serialization=True)\", "+
		"or download the model's model.safetensors from the Hub", strings.Join(found, ", "), dir, dir)
}

// Files returns the files the model was built from, relative to
// Info().Dir and sorted: the ones ContentHash reads. inspect lists them so
// that a user sees what a directory contributes.
func (m *Model) Files() []string {
	out := make([]string, len(m.hashFiles))
	for i, f := range m.hashFiles {
		rel, err := filepath.Rel(m.info.Dir, f)
		if err != nil {
			rel = f
		}
		out[i] = filepath.ToSlash(rel)
	}
	return out
}
