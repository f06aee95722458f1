package encoder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxJSONSize bounds the small JSON files of a model directory, so a wrong
// path (a checkpoint named config.json, say) fails fast.
const maxJSONSize = 16 << 20

// stLayout is what the sentence-transformers files of a model directory say
// about the modules around the transformer.
type stLayout struct {
	transformerDir string // directory of config.json, checkpoint, tokenizer
	hasModules     bool
	poolingDir     string // "" when there is no Pooling module
	normalize      bool
	maxSeqLen      int // 0 when sentence_bert_config.json gives none
	lowerCase      bool
	pooling        poolSpec
	prompts        map[string]string
	defaultPrompt  string
	// denseDirs are the directories of the Dense modules between Pooling
	// and Normalize, in order.
	denseDirs []string
	// mlm marks an MLMTransformer (a SparseEncoder's masked-LM stack);
	// splade is its SpladePooling, nil for a dense model.
	mlm    bool
	splade *spladeSpec
	// stType is config_sentence_transformers.json's model_type
	// (SentenceTransformer, SparseEncoder, CrossEncoder), "" when absent.
	stType string
	files  []string // the files read, for ContentHash
	notes  []string
}

// readFile reads the optional JSON file at path into v and records it
// among the files read (for ContentHash); a missing file gives false and
// no error.
func (l *stLayout) readFile(path string, v any) (found bool, err error) {
	switch err := readJSON(path, v); {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	l.files = append(l.files, path)
	return true, nil
}

// readJSON reads the JSON file at path into v. A missing file returns an
// error wrapping fs.ErrNotExist.
func readJSON(path string, v any) error {
	return withFile(path, func(f *os.File, size int64) error {
		if size > maxJSONSize {
			return fmt.Errorf("%w: %s: %d bytes is too large for a config file", ErrConfig, path, size)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(f, b); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
		}
		return nil
	})
}

// stModule is one entry of modules.json.
type stModule struct {
	Idx  int    `json:"idx"`
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
}

// moduleKind maps a module class path, in its old
// (sentence_transformers.models.Pooling) or new
// (sentence_transformers.sentence_transformer.modules.pooling.Pooling) form,
// to its class name.
func moduleKind(t string) string {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// readLayout reads the sentence-transformers files of dir. A directory
// without modules.json is treated as a plain transformers model with mean
// pooling and no normalisation, as sentence-transformers does.
func readLayout(dir string) (*stLayout, error) {
	l := &stLayout{transformerDir: dir}
	var mods []stModule
	mpath := filepath.Join(dir, "modules.json")
	switch found, err := l.readFile(mpath, &mods); {
	case err != nil:
		return nil, err
	case !found:
		l.pooling = poolSpec{modes: []poolMode{poolMean}, includePrompt: true}
		l.notes = append(l.notes, "no modules.json: plain transformers model, mean pooling without normalisation (the sentence-transformers default)")
	default:
		l.hasModules = true
		sort.SliceStable(mods, func(i, j int) bool { return mods[i].Idx < mods[j].Idx })
		seenTransformer := false
		for _, m := range mods {
			// An element "..", not any "..": a directory may be named pool..x.
			if m.Path != "" && !filepath.IsLocal(m.Path) {
				return nil, fmt.Errorf("%w: %s: module %q has path %q outside the model directory", ErrConfig, mpath, m.Name, m.Path)
			}
			switch k := moduleKind(m.Type); k {
			case "Transformer", "MLMTransformer":
				if seenTransformer {
					return nil, fmt.Errorf("%w: %s: more than one Transformer module", ErrUnsupported, mpath)
				}
				seenTransformer = true
				l.mlm = k == "MLMTransformer"
				l.transformerDir = filepath.Join(dir, m.Path)
			case "Pooling":
				if !seenTransformer || l.poolingDir != "" || l.mlm {
					return nil, fmt.Errorf("%w: %s: Pooling module %q must follow the Transformer, once", ErrUnsupported, mpath, m.Name)
				}
				l.poolingDir = filepath.Join(dir, m.Path)
			case "SpladePooling":
				if !l.mlm || l.splade != nil {
					return nil, fmt.Errorf("%w: %s: SpladePooling module %q must follow an MLMTransformer, once", ErrUnsupported, mpath, m.Name)
				}
				cpath := filepath.Join(dir, m.Path, "config.json")
				sp, err := readSplade(cpath)
				if err != nil {
					return nil, err
				}
				l.splade = &sp
				l.files = append(l.files, cpath)
			case "Dense":
				if l.poolingDir == "" || l.normalize {
					return nil, fmt.Errorf("%w: %s: Dense module %q must come after Pooling and before Normalize", ErrUnsupported, mpath, m.Name)
				}
				l.denseDirs = append(l.denseDirs, filepath.Join(dir, m.Path))
			case "Normalize":
				if l.poolingDir == "" {
					return nil, fmt.Errorf("%w: %s: Normalize module %q before any Pooling module", ErrUnsupported, mpath, m.Name)
				}
				l.normalize = true
			default:
				return nil, fmt.Errorf("%w: %s: module %q of type %q (supported: %s)", ErrUnsupported, mpath, m.Name, m.Type, strings.Join(supportedModules, ", "))
			}
		}
		if !seenTransformer {
			return nil, fmt.Errorf("%w: %s lists no Transformer module", ErrModelDir, mpath)
		}
		if l.mlm {
			if l.splade == nil {
				return nil, fmt.Errorf("%w: %s: an MLMTransformer without SpladePooling (masked-LM logits per token are not an embedding)", ErrUnsupported, mpath)
			}
			// SpladePooling pools every token, prompt tokens included.
			l.pooling = poolSpec{includePrompt: true}
			break
		}
		if l.poolingDir == "" {
			return nil, fmt.Errorf("%w: %s lists no Pooling module (token-embedding-only models are not supported)", ErrUnsupported, mpath)
		}
		ppath := filepath.Join(l.poolingDir, "config.json")
		p, err := readPooling(ppath)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s is missing", ErrModelDir, ppath)
			}
			return nil, err
		}
		l.pooling = p
		l.files = append(l.files, ppath)
	}
	if err := l.readSBERT(); err != nil {
		return nil, err
	}
	if l.maxSeqLen == 0 {
		if err := l.readModelMaxLength(); err != nil {
			return nil, err
		}
	}
	if err := l.readPrompts(dir); err != nil {
		return nil, err
	}
	return l, nil
}

// supportedModules are the sentence-transformers module classes Load
// implements, in their pipeline order.
var supportedModules = []string{"Transformer", "MLMTransformer", "Pooling", "SpladePooling", "Dense", "Normalize"}

// readSBERT reads sentence_bert_config.json beside the transformer.
func (l *stLayout) readSBERT() error {
	path := filepath.Join(l.transformerDir, "sentence_bert_config.json")
	var c struct {
		MaxSeqLength *float64 `json:"max_seq_length"`
		DoLowerCase  bool     `json:"do_lower_case"`
	}
	if found, err := l.readFile(path, &c); !found {
		return err
	}
	if c.MaxSeqLength != nil {
		v := *c.MaxSeqLength
		if v != float64(int(v)) || v < 1 || v > 1<<24 {
			return fmt.Errorf("%w: %s: max_seq_length %v is not a positive integer", ErrConfig, path, v)
		}
		l.maxSeqLen = int(v)
	}
	l.lowerCase = c.DoLowerCase
	return nil
}

// readPrompts reads the prompts of config_sentence_transformers.json.
func (l *stLayout) readPrompts(dir string) error {
	path := filepath.Join(dir, "config_sentence_transformers.json")
	var c struct {
		ModelType         string            `json:"model_type"`
		Prompts           map[string]string `json:"prompts"`
		DefaultPromptName *string           `json:"default_prompt_name"`
	}
	if found, err := l.readFile(path, &c); !found {
		return err
	}
	l.stType = c.ModelType
	l.prompts = c.Prompts
	if c.DefaultPromptName != nil && *c.DefaultPromptName != "" {
		if _, ok := c.Prompts[*c.DefaultPromptName]; !ok {
			return fmt.Errorf("%w: %s: default_prompt_name %q is not among the prompts", ErrConfig, path, *c.DefaultPromptName)
		}
		l.defaultPrompt = *c.DefaultPromptName
	}
	return nil
}

// readPooling reads a Pooling module's config.json in its classic form
// (pooling_mode_mean_tokens: true, …) or its newer one (pooling_mode:
// "mean", or a list of modes).
func readPooling(path string) (poolSpec, error) {
	var raw map[string]json.RawMessage
	if err := readJSON(path, &raw); err != nil {
		return poolSpec{}, err
	}
	p := poolSpec{includePrompt: true}
	if v, ok := raw["include_prompt"]; ok {
		if err := json.Unmarshal(v, &p.includePrompt); err != nil {
			return p, fmt.Errorf("%w: %s: include_prompt: %v", ErrConfig, path, err)
		}
	}
	for _, k := range []string{"word_embedding_dimension", "embedding_dimension"} {
		if v, ok := raw[k]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, &p.dim); err != nil {
				return p, fmt.Errorf("%w: %s: %s: %v", ErrConfig, path, k, err)
			}
		}
	}
	if v, ok := raw["pooling_mode"]; ok && string(v) != "null" {
		var names []string
		var one string
		if json.Unmarshal(v, &one) == nil {
			names = []string{one}
		} else if err := json.Unmarshal(v, &names); err != nil {
			return p, fmt.Errorf("%w: %s: pooling_mode: want a string or a list of strings: %s", ErrConfig, path, v)
		}
		for _, n := range names {
			m, ok := poolModeByName(n)
			if !ok {
				return p, fmt.Errorf("%w: %s: pooling_mode %q (supported: %s)", ErrUnsupported, path, n, strings.Join(poolModeNames(), ", "))
			}
			p.modes = append(p.modes, m)
		}
		p.modes = canonicalModes(p.modes)
	} else {
		for _, m := range allPoolModes {
			v, ok := raw[m.classicKey()]
			if !ok {
				continue
			}
			var on bool
			if err := json.Unmarshal(v, &on); err != nil {
				return p, fmt.Errorf("%w: %s: %s: %v", ErrConfig, path, m.classicKey(), err)
			}
			if on {
				p.modes = append(p.modes, m)
			}
		}
	}
	if len(p.modes) == 0 {
		return p, fmt.Errorf("%w: %s selects no pooling mode", ErrConfig, path)
	}
	return p, nil
}
