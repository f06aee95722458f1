package hub

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// modelExts are the file types an embedding model directory is read from:
// configs and tokenizers (.json), vocabularies and merges (.txt),
// SentencePiece models (.model) and weights (.safetensors).
var modelExts = []string{".json", ".txt", ".model", ".safetensors"}

// SelectFiles returns, sorted, the files of a repository (slash-separated
// names as the hub lists them) that an embedding model needs: those with a
// model extension at the top level or in one of the sentence-transformers
// module folders modulePaths. Other weights (pytorch_model.bin, ONNX,
// TensorFlow, Flax), other folders and documentation are left out. It fails
// with ErrNoWeights when no safetensors file is selected.
func SelectFiles(names, modulePaths []string) ([]string, error) {
	dirs := append([]string{""}, modulePaths...)
	var out []string
	hasWeights := false
	for _, n := range names {
		dir := path.Dir(n)
		if dir == "." {
			dir = ""
		}
		if !slices.Contains(dirs, dir) || !slices.Contains(modelExts, path.Ext(n)) {
			continue
		}
		out = append(out, n)
		if strings.HasSuffix(n, ".safetensors") {
			hasWeights = true
		}
	}
	if !hasWeights {
		var other []string
		for _, n := range names {
			switch path.Ext(n) {
			case ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ot", ".gguf":
				other = append(other, n)
			}
		}
		if len(other) == 0 {
			return nil, ErrNoWeights
		}
		return nil, fmt.Errorf("%w (it has %s; convert them to safetensors)", ErrNoWeights, strings.Join(other, ", "))
	}
	slices.Sort(out)
	return out, nil
}
