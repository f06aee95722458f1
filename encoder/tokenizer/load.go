package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxFileSize bounds the tokenizer files read into memory, so that a wrong
// path (a checkpoint, say) fails fast instead of exhausting memory.
const maxFileSize = 1 << 30

// Load reads the tokenizer of a model directory: dir/tokenizer.json when it
// exists, else the older dir/vocab.txt (a BERT WordPiece vocabulary) with
// the options of dir/tokenizer_config.json and dir/special_tokens_map.json.
// The pad token named by tokenizer_config.json, when there is one, sets
// PadID.
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	cfg, err := readTokenizerConfig(dir)
	if err != nil {
		return nil, err
	}
	t, err := FromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		vocab := filepath.Join(dir, "vocab.txt")
		if _, serr := os.Stat(vocab); serr != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", dir, ErrNotFound)
		}
		return loadVocabTxt(vocab, cfg)
	}
	if err != nil {
		return nil, err
	}
	if cfg.PadToken != "" && !t.padExplicit {
		if id, ok := t.TokenToID(string(cfg.PadToken)); ok {
			t.padID = id
		}
	}
	return t, nil
}

// FromFile reads a Hugging Face tokenizer.json file.
func FromFile(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("tokenizer: %s: %w: %d bytes is too large", path, ErrFormat, st.Size())
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// tokenizerJSON is the top level of tokenizer.json.
type tokenizerJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Model         json.RawMessage `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Padding       *struct {
		PadID *int32 `json:"pad_id"`
	} `json:"padding"`
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// parseTokenizerJSON builds a Tokenizer from the bytes of tokenizer.json.
func parseTokenizerJSON(data []byte) (*Tokenizer, error) {
	var j tokenizerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, formatErr(err)
	}
	if isNull(j.Model) {
		return nil, formatErr(errors.New("no model"))
	}
	model, kind, err := newComponent("model", modelCtors, j.Model, func(c modelCtor) (Model, error) { return c(j.Model) })
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{model: model, kind: kind}
	if !isNull(j.Normalizer) {
		if t.normalizer, err = newNormalizer(j.Normalizer); err != nil {
			return nil, err
		}
	}
	if !isNull(j.PreTokenizer) {
		if t.preTok, err = newPreTokenizer(j.PreTokenizer); err != nil {
			return nil, err
		}
	}
	if !isNull(j.PostProcessor) {
		if t.post, err = newPostProcessor(j.PostProcessor, model); err != nil {
			return nil, err
		}
	}
	if err := t.setAdded(j.AddedTokens); err != nil {
		return nil, err
	}
	t.setChunkable()
	if x, ok := t.post.(interface{ maxID() int32 }); ok && int(x.maxID()) >= t.vocabSize {
		// The encoder indexes its embedding table with these ids.
		return nil, formatErr(fmt.Errorf("post_processor: special token id %d is outside the vocabulary (%d ids)", x.maxID(), t.vocabSize))
	}
	if j.Padding != nil && j.Padding.PadID != nil {
		t.padID = *j.Padding.PadID
		t.padExplicit = true
	} else {
		t.padID = t.guessPadID()
	}
	return t, nil
}

// setAdded installs the added-token tables and computes the vocabulary
// size. Tokens with normalized=true are matched in normalised text, so
// their pattern is their normalised content.
func (t *Tokenizer) setAdded(toks []addedToken) error {
	t.addedByID = make(map[int32]string, len(toks))
	t.addedByTok = make(map[string]int32, len(toks))
	var raw, norm []addedToken
	maxID := int32(t.model.VocabSize() - 1)
	for i, a := range toks {
		if a.ID < 0 {
			return formatErr(fmt.Errorf("added_tokens[%d] %q has negative id %d", i, a.Content, a.ID))
		}
		t.addedByID[a.ID] = a.Content
		t.addedByTok[a.Content] = a.ID
		maxID = max(maxID, a.ID)
		if a.Normalized && t.normalizer != nil {
			a.Content = t.normalizer.Normalize(a.Content)
		}
		if a.Normalized {
			norm = append(norm, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.rawAdded = newAddedMatcher(raw)
	t.normAdded = newAddedMatcher(norm)
	t.vocabSize = int(maxID) + 1
	return nil
}

// guessPadID finds the padding token among the usual names, since
// tokenizer.json only names it when padding is enabled.
func (t *Tokenizer) guessPadID() int32 {
	for _, name := range []string{"[PAD]", "<pad>", "<|endoftext|>", "</s>"} {
		if id, ok := t.TokenToID(name); ok {
			return id
		}
	}
	return 0
}

// tokenizerConfig holds the fields of tokenizer_config.json (and
// special_tokens_map.json) that tokenization depends on.
type tokenizerConfig struct {
	DoLowerCase          *bool `json:"do_lower_case"`
	StripAccents         *bool `json:"strip_accents"`
	TokenizeChineseChars *bool `json:"tokenize_chinese_chars"`
	// The special tokens come from the two files merged.
	UnkToken           tokenName             `json:"-"`
	ClsToken           tokenName             `json:"-"`
	SepToken           tokenName             `json:"-"`
	PadToken           tokenName             `json:"-"`
	MaskToken          tokenName             `json:"-"`
	AddedTokensDecoder map[string]addedToken `json:"added_tokens_decoder"`
}

// tokenName is a special token in tokenizer_config.json: a plain string or
// an object {"content": ...}.
type tokenName string

func (n *tokenName) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = tokenName(s)
		return nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*n = tokenName(o.Content)
	return nil
}

type specialTokens struct {
	UnkToken  tokenName `json:"unk_token"`
	ClsToken  tokenName `json:"cls_token"`
	SepToken  tokenName `json:"sep_token"`
	PadToken  tokenName `json:"pad_token"`
	MaskToken tokenName `json:"mask_token"`
}

// readTokenizerConfig reads dir/tokenizer_config.json and
// dir/special_tokens_map.json when they exist; the config file wins.
func readTokenizerConfig(dir string) (tokenizerConfig, error) {
	var cfg tokenizerConfig
	var names [2]specialTokens
	for i, name := range []string{"special_tokens_map.json", "tokenizer_config.json"} {
		path := filepath.Join(dir, name)
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return cfg, err
		}
		if err := json.Unmarshal(data, &names[i]); err != nil {
			return cfg, fmt.Errorf("tokenizer: %s: %w: %v", path, ErrFormat, err)
		}
		if i == 1 {
			if err := json.Unmarshal(data, &cfg); err != nil {
				return cfg, fmt.Errorf("tokenizer: %s: %w: %v", path, ErrFormat, err)
			}
		}
	}
	first := func(def string, vals ...tokenName) tokenName {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return tokenName(def)
	}
	cfg.UnkToken = first("[UNK]", names[1].UnkToken, names[0].UnkToken)
	cfg.ClsToken = first("[CLS]", names[1].ClsToken, names[0].ClsToken)
	cfg.SepToken = first("[SEP]", names[1].SepToken, names[0].SepToken)
	cfg.MaskToken = first("[MASK]", names[1].MaskToken, names[0].MaskToken)
	cfg.PadToken = first("", names[1].PadToken, names[0].PadToken)
	return cfg, nil
}

// loadVocabTxt builds a BERT tokenizer from a vocab.txt file (one token a
// line, the id being the line number) the way transformers converts a slow
// BertTokenizer into a fast one.
func loadVocabTxt(path string, cfg tokenizerConfig) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	vocab := map[string]int32{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n int32
	for sc.Scan() {
		// transformers strips only the line break: spaces are part of tokens.
		vocab[strings.TrimSuffix(sc.Text(), "\r")] = n
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w: %v", path, ErrFormat, err)
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: %w: empty vocabulary", path, ErrFormat)
	}
	model, err := newWordPiece(vocab, string(cfg.UnkToken), "##", 100)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	lower := cfg.DoLowerCase == nil || *cfg.DoLowerCase
	chinese := cfg.TokenizeChineseChars == nil || *cfg.TokenizeChineseChars
	t := &Tokenizer{
		model:      model,
		kind:       "WordPiece",
		normalizer: newBertNormalizer(true, chinese, cfg.StripAccents, lower),
		preTok:     bertPreTokenizer{},
	}
	cls, okc := vocab[string(cfg.ClsToken)]
	sep, oks := vocab[string(cfg.SepToken)]
	if !okc || !oks {
		return nil, fmt.Errorf("tokenizer: %s: %w: %q or %q is not in the vocabulary", path, ErrFormat, cfg.ClsToken, cfg.SepToken)
	}
	t.post = bertTemplate(cls, sep)
	var added []addedToken
	seen := map[string]bool{}
	for _, name := range []tokenName{cfg.PadToken, cfg.UnkToken, cfg.ClsToken, cfg.SepToken, cfg.MaskToken} {
		if id, ok := vocab[string(name)]; ok && !seen[string(name)] {
			seen[string(name)] = true
			added = append(added, addedToken{ID: id, Content: string(name), Special: true})
		}
	}
	for key, a := range cfg.AddedTokensDecoder {
		if seen[a.Content] || a.Content == "" {
			continue
		}
		var id int32
		if _, err := fmt.Sscan(key, &id); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w: added_tokens_decoder key %q is not an id", path, ErrFormat, key)
		}
		a.ID = id
		seen[a.Content] = true
		added = append(added, a)
	}
	if err := t.setAdded(added); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	t.setChunkable()
	t.padID = t.guessPadID()
	if id, ok := t.TokenToID(string(cfg.PadToken)); ok && cfg.PadToken != "" {
		t.padID = id
	}
	return t, nil
}
