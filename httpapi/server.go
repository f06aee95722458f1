package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/embedpipe/embedpipe/workers"
)

// Config configures the HTTP API.
type Config struct {
	// Model is the loaded model; Batcher the dynamic batcher over it.
	Model   *encoder.Model
	Batcher *workers.Batcher
	// ModelID names the model in replies and /info (a hub id or the
	// directory's name).
	ModelID string
	// APIKey, when set, is required as "Authorization: Bearer APIKey" on
	// the API endpoints (not on /health, /live and /metrics).
	APIKey string
	// MaxClientBatchSize bounds the inputs of one request; default 2048
	// (OpenAI's limit).
	MaxClientBatchSize int
	// MaxInputTokens is the length inputs are truncated to (OpenAI) or
	// refused beyond (TEI with truncate false); default and maximum the
	// model's MaxSeqLen.
	MaxInputTokens int
	// MaxBodyBytes bounds a request body; default 16 MiB.
	MaxBodyBytes int64
	// SparseTopK, when positive, keeps the SparseTopK largest weights of
	// each /embed_sparse vector (a sparse model's), as embed's
	// --sparse-top-k.
	SparseTopK int
	Metrics    *metrics.Metrics
	Health     *metrics.Health
	Logger     *slog.Logger
}

// Server is the HTTP API's handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	special map[int32]bool
}

// New checks cfg and returns the API's handler.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil || cfg.Batcher == nil {
		return nil, fmt.Errorf("%w: Model and Batcher are required", ErrConfig)
	}
	if cfg.MaxClientBatchSize <= 0 {
		cfg.MaxClientBatchSize = 2048
	}
	if ml := cfg.Model.MaxSeqLen(); cfg.MaxInputTokens <= 0 || cfg.MaxInputTokens > ml {
		if cfg.MaxInputTokens > ml {
			return nil, fmt.Errorf("%w: max input tokens %d exceeds the model's %d", ErrConfig, cfg.MaxInputTokens, ml)
		}
		cfg.MaxInputTokens = ml
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.SparseTopK < 0 {
		return nil, fmt.Errorf("%w: sparse top-k %d is negative", ErrConfig, cfg.SparseTopK)
	}
	if cfg.Health == nil {
		cfg.Health = &metrics.Health{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), special: map[int32]bool{}}
	// The ids the template adds around an empty text are the special
	// tokens /tokenize marks.
	ids, _ := cfg.Model.TokenizeTo(nil, "", "", 0)
	for _, id := range ids {
		s.special[id] = true
	}
	s.mux.HandleFunc("POST /v1/embeddings", s.auth(s.openAIEmbeddings, openAIError))
	s.mux.HandleFunc("POST /embeddings", s.auth(s.openAIEmbeddings, openAIError))
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models, openAIError))
	s.mux.HandleFunc("POST /embed", s.auth(s.teiEmbed, teiError))
	s.mux.HandleFunc("POST /embed_sparse", s.auth(s.teiEmbedSparse, teiError))
	s.mux.HandleFunc("POST /rerank", s.auth(s.teiRerank, teiError))
	s.mux.HandleFunc("POST /tokenize", s.auth(s.teiTokenize, teiError))
	s.mux.HandleFunc("GET /info", s.auth(s.info, teiError))
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	s.mux.HandleFunc("GET /health", cfg.Health.ServeReady)
	s.mux.HandleFunc("GET /live", metrics.ServeLive)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// apiError is an error with its HTTP status and kind, written in the shape
// of the API that raised it.
type apiError struct {
	status int
	kind   string // a metrics.Err* kind
	param  string
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(param, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, kind: metrics.ErrValidation, param: param, msg: fmt.Sprintf(format, a...)}
}

func tooLarge(param, format string, a ...any) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, kind: metrics.ErrValidation, param: param, code: "request_too_large", msg: fmt.Sprintf(format, a...)}
}

// wrongModel is the error of an endpoint the model's kind cannot serve:
// TEI answers it 424 with error_type Backend; OpenAI's shape gets 400
// (see openAIError).
func wrongModel(format string, a ...any) *apiError {
	return &apiError{status: http.StatusFailedDependency, kind: metrics.ErrBackend, param: "model", code: "model_not_supported",
		msg: fmt.Sprintf(format, a...)}
}

// kindError returns the error of an endpoint that serves models of kind
// want, or nil when the served model is one.
func (s *Server) kindError(endpoint, want string) *apiError {
	info := s.cfg.Model.Info()
	if info.Kind == want {
		return nil
	}
	use := map[string]string{encoder.KindEmbedding: "/embed or /v1/embeddings", encoder.KindSparse: "/embed_sparse",
		encoder.KindCrossEncoder: "/rerank"}[info.Kind]
	what := map[string]string{encoder.KindEmbedding: "an embedding model", encoder.KindSparse: "a sparse (SPLADE) model",
		encoder.KindCrossEncoder: "a re-ranker (cross-encoder) model"}
	return wrongModel("%s needs %s, and %s is %s: use %s", endpoint, what[want], s.cfg.ModelID, what[info.Kind], use)
}

type errorWriter func(w http.ResponseWriter, e *apiError)

// openAIError writes OpenAI's error object.
func openAIError(w http.ResponseWriter, e *apiError) {
	typ := "invalid_request_error"
	switch e.status {
	case http.StatusTooManyRequests:
		typ = "rate_limit_exceeded"
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		typ = "server_error"
	}
	status := e.status
	if status == http.StatusFailedDependency {
		status = http.StatusBadRequest // OpenAI's status for a model that cannot serve the endpoint
	}
	body := map[string]any{"error": map[string]any{"message": e.msg, "type": typ, "param": nilIfEmpty(e.param), "code": nilIfEmpty(e.code)}}
	writeJSON(w, status, body)
}

// teiError writes text-embeddings-inference's error object.
func teiError(w http.ResponseWriter, e *apiError) {
	typ := map[string]string{metrics.ErrValidation: "Validation", metrics.ErrTokenizer: "Tokenizer", metrics.ErrOverloaded: "Overloaded",
		metrics.ErrBackend: "Backend", metrics.ErrUnauthorized: "Unauthorized"}[e.kind]
	status := e.status
	if status == http.StatusBadRequest && e.kind == metrics.ErrValidation {
		status = http.StatusUnprocessableEntity // TEI's status for validation errors
	}
	writeJSON(w, status, map[string]string{"error": e.msg, "error_type": typ})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// auth checks the API key before h.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request) *apiError, ew errorWriter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) != 1 {
				s.cfg.Metrics.Done(apiName(r), 0, time.Now(), metrics.ErrUnauthorized)
				w.Header().Set("WWW-Authenticate", `Bearer realm="embedpipe"`)
				ew(w, &apiError{status: http.StatusUnauthorized, kind: metrics.ErrUnauthorized, code: "invalid_api_key",
					msg: "missing or invalid API key: send Authorization: Bearer <key>"})
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if e := h(w, r); e != nil {
			if e.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			ew(w, e)
		}
	}
}

func apiName(r *http.Request) string {
	if strings.Contains(r.URL.Path, "embeddings") || strings.HasPrefix(r.URL.Path, "/v1/") {
		return "openai"
	}
	return "tei"
}

// decode reads a JSON body into v.
func (s *Server) decode(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge("", "request body exceeds %d bytes", mbe.Limit)
		}
		return badRequest("", "reading the request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("", "request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// inputs is a request's inputs: texts, or token id sequences.
type inputs struct {
	texts []string
	ids   [][]int32
}

func (in inputs) len() int { return len(in.texts) + len(in.ids) }

// parseInput reads OpenAI's input: a string, an array of strings, an array
// of token ids, or an array of token id arrays.
func parseInput(raw json.RawMessage, param string) (inputs, *apiError) {
	var in inputs
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return in, badRequest(param, "%s is required", param)
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		in.texts = []string{one}
		return in, nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return in, badRequest(param, "%s must be a string, an array of strings or an array of token arrays", param)
	}
	if len(arr) == 0 {
		return in, badRequest(param, "%s is empty", param)
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil {
		in.texts = strs
		return in, nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		in.ids = [][]int32{ids}
		return in, nil
	}
	var idss [][]int32
	if json.Unmarshal(raw, &idss) == nil {
		in.ids = idss
		return in, nil
	}
	return in, badRequest(param, "%s must be a string, an array of strings, an array of token ids or an array of token id arrays (not mixed)", param)
}

// embedder resolves a request's options on the embedding seam, which
// tokenizes (prompt, MaxInputTokens, truncation side), prepares the batch
// (pooling skip, normalization) and finishes the vectors (Matryoshka
// truncation, normalization) as for every other path.
func (s *Server) embedder(o embed.Options) (*embed.Embedder, *apiError) {
	o.MaxLength = s.cfg.MaxInputTokens
	e, err := embed.New(s.cfg.Model, o)
	if err != nil {
		return nil, badRequest("", "%v", err)
	}
	return e, nil
}

// tokenize turns in into sequences with e. Texts longer than
// MaxInputTokens are truncated (on the side e's Config says) when truncate
// is set and refused otherwise; token arrays are taken as the model's ids
// (as /tokenize returns them) and checked.
func (s *Server) tokenize(in inputs, e *embed.Embedder, truncate bool, param string) (*encoder.Batch, []int, *apiError) {
	if n := in.len(); n > s.cfg.MaxClientBatchSize {
		return nil, nil, tooLarge(param, "%d inputs exceed the limit of %d per request", n, s.cfg.MaxClientBatchSize)
	}
	seqs := new(encoder.Batch)
	seqs.Reset()
	e.Prepare(seqs)
	if len(in.texts) == 0 {
		seqs.PoolSkip = 0 // token ids carry no prompt
	}
	maxTok, left := s.cfg.MaxInputTokens, e.Config().TruncateLeft
	vocab := s.cfg.Model.Info().Vocab
	for i, t := range in.texts {
		if t == "" {
			return nil, nil, badRequest(param, "%s[%d] is empty", param, i)
		}
		ids, cut := e.TokenizeTo(seqs.IDs, t)
		if cut && !truncate {
			return nil, nil, tooLarge(param, "%s[%d] has more than %d tokens; set truncate or shorten it", param, i, maxTok)
		}
		if cut && left && seqs.PoolSkip > 0 {
			// The prompt comes first, so the left cut took some of the
			// tokens the pooling was to leave out.
			return nil, nil, tooLarge(param, "%s[%d] has more than %d tokens: truncating it on the left would cut the prompt, which this model's pooling excludes", param, i, maxTok)
		}
		seqs.IDs = ids
		seqs.Starts = append(seqs.Starts, len(ids))
	}
	for i, ids := range in.ids {
		if len(ids) == 0 {
			return nil, nil, badRequest(param, "%s[%d] has no tokens", param, i)
		}
		if len(ids) > maxTok {
			switch {
			case !truncate:
				return nil, nil, tooLarge(param, "%s[%d] has %d tokens, more than %d", param, i, len(ids), maxTok)
			case left:
				ids = ids[len(ids)-maxTok:]
			default:
				ids = ids[:maxTok]
			}
		}
		for _, id := range ids {
			if id < 0 || int(id) >= vocab {
				return nil, nil, badRequest(param, "%s[%d]: token id %d outside the vocabulary [0, %d)", param, i, id, vocab)
			}
		}
		seqs.Add(ids)
	}
	lengths := make([]int, seqs.Len())
	for i := range lengths {
		lengths[i] = seqs.Starts[i+1] - seqs.Starts[i]
	}
	return seqs, lengths, nil
}

// embed runs seqs (tokenized and prepared by e) through the shared batcher
// and returns their vectors as e finishes them, and their width.
func (s *Server) embed(ctx context.Context, e *embed.Embedder, seqs *encoder.Batch) ([]float32, int, *apiError) {
	c := e.Config()
	n := seqs.Len()
	full := make([]float32, n*c.ModelDim)
	if e := batchError(ctx, s.cfg.Batcher.Embed(ctx, seqs, full)); e != nil {
		return nil, 0, e
	}
	if c.Dim == c.ModelDim && !c.Normalize {
		return full, c.Dim, nil
	}
	vecs := make([]float32, n*c.Dim)
	if err := e.FinishTo(vecs, full, n); err != nil {
		return nil, 0, &apiError{status: http.StatusInternalServerError, kind: metrics.ErrBackend, msg: err.Error()}
	}
	return vecs, c.Dim, nil
}

// batchError turns the error of a request to the shared batcher into the
// API's: 429 when the queue is full, 503 while shutting down.
func batchError(ctx context.Context, err error) *apiError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, workers.ErrOverloaded):
		return &apiError{status: http.StatusTooManyRequests, kind: metrics.ErrOverloaded, code: "rate_limit_exceeded",
			msg: "the server is at capacity (request queue full); retry after the Retry-After delay"}
	case errors.Is(err, workers.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, kind: metrics.ErrOverloaded, msg: "the server is shutting down"}
	case ctx.Err() != nil:
		return &apiError{status: 499, kind: metrics.ErrBackend, msg: "request cancelled"}
	}
	return &apiError{status: http.StatusInternalServerError, kind: metrics.ErrBackend, msg: err.Error()}
}

func (s *Server) checkDims(dims *int, param string) (int, *apiError) {
	if dims == nil {
		return 0, nil
	}
	if *dims < 1 || *dims > s.cfg.Model.Dim() {
		return 0, badRequest(param, "%s %d: want 1 to %d", param, *dims, s.cfg.Model.Dim())
	}
	return *dims, nil
}

type openAIRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

type openAIEmbedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type openAIResponse struct {
	Object string            `json:"object"`
	Data   []openAIEmbedding `json:"data"`
	Model  string            `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// openAIEmbeddings serves POST /v1/embeddings. Inputs are truncated to
// MaxInputTokens, as embedpipe embed truncates at the model's length.
func (s *Server) openAIEmbeddings(w http.ResponseWriter, r *http.Request) *apiError {
	return s.metered("openai", func(m *meter) *apiError {
		var req openAIRequest
		in, e := s.readInputs(m, r, &req, &req.Input, "/v1/embeddings", encoder.KindEmbedding, "input")
		if e != nil {
			return e
		}
		n := m.n
		switch req.EncodingFormat {
		case "", "float", "base64":
		default:
			return badRequest("encoding_format", "encoding_format %q: want float or base64", req.EncodingFormat)
		}
		dims, e := s.checkDims(req.Dimensions, "dimensions")
		if e != nil {
			return e
		}
		// dimensions truncates and renormalizes, whatever the model.
		o := embed.Options{TruncateDim: dims}
		if dims > 0 {
			yes := true
			o.Normalize = &yes
		}
		em, seqs, e := s.prepare(m, o, in, true, "input")
		if e != nil {
			return e
		}
		vecs, out, e := s.embed(r.Context(), em, seqs)
		if e != nil {
			return e
		}
		resp := openAIResponse{Object: "list", Model: s.cfg.ModelID, Data: make([]openAIEmbedding, n)}
		resp.Usage.PromptTokens, resp.Usage.TotalTokens = seqs.Tokens(), seqs.Tokens()
		for i := range n {
			v := vecs[i*out : (i+1)*out]
			d := openAIEmbedding{Object: "embedding", Index: i, Embedding: v}
			if req.EncodingFormat == "base64" {
				d.Embedding = base64Floats(v)
			}
			resp.Data[i] = d
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
}

// meter is what the metrics record of one request: when it started and
// how many inputs it carries (0 until they are read).
type meter struct {
	start time.Time
	n     int
}

// metered runs the handler body h and records its request in the metrics
// under api: the inputs h counted in its meter, the time since it started
// and the kind of the error h returns, if any.
func (s *Server) metered(api string, h func(m *meter) *apiError) *apiError {
	m := &meter{start: time.Now()}
	e := h(m)
	kind := ""
	if e != nil {
		kind = e.kind
	}
	s.cfg.Metrics.Done(api, m.n, m.start, kind)
	return e
}

// readInputs decodes r's body into req, checks that the served model is of
// the kind the endpoint needs, parses the inputs the body gave in *raw
// (a field of req) under param, and counts them in m and the metrics.
func (s *Server) readInputs(m *meter, r *http.Request, req any, raw *json.RawMessage, endpoint, kind, param string) (inputs, *apiError) {
	if e := s.decode(r, req); e != nil {
		return inputs{}, e
	}
	if e := s.kindError(endpoint, kind); e != nil {
		return inputs{}, e
	}
	in, e := parseInput(*raw, param)
	if e != nil {
		return inputs{}, e
	}
	m.n = in.len()
	s.cfg.Metrics.Request(m.n)
	return in, nil
}

// prepare resolves o on the embedding seam and tokenizes in with it (see
// tokenize), recording the time since m started as tokenization time.
func (s *Server) prepare(m *meter, o embed.Options, in inputs, truncate bool, param string) (*embed.Embedder, *encoder.Batch, *apiError) {
	em, e := s.embedder(o)
	if e != nil {
		return nil, nil, e
	}
	seqs, lengths, e := s.tokenize(in, em, truncate, param)
	if e != nil {
		return nil, nil, e
	}
	s.cfg.Metrics.Tokenized(time.Since(m.start), lengths...)
	return em, seqs, nil
}

// teiInputs are the fields TEI's /embed and /embed_sparse requests share.
type teiInputs struct {
	Inputs              json.RawMessage `json:"inputs"`
	Truncate            *bool           `json:"truncate"`
	TruncationDirection string          `json:"truncation_direction"`
	PromptName          *string         `json:"prompt_name"`
}

// truncate reports whether the request asks for truncation (TEI's
// default: no).
func (t *teiInputs) truncate() bool { return t.Truncate != nil && *t.Truncate }

// readTEI reads a TEI /embed or /embed_sparse request into req, whose
// shared fields are t (see readInputs), and returns its inputs and the
// options of the embedding seam that its truncation_direction and
// prompt_name give.
func (s *Server) readTEI(m *meter, r *http.Request, req any, t *teiInputs, endpoint, kind string) (inputs, embed.Options, *apiError) {
	in, e := s.readInputs(m, r, req, &t.Inputs, endpoint, kind, "inputs")
	if e != nil {
		return inputs{}, embed.Options{}, e
	}
	left, e := truncateLeft(t.TruncationDirection)
	if e != nil {
		return inputs{}, embed.Options{}, e
	}
	prompt, e := s.prompt(t.PromptName)
	if e != nil {
		return inputs{}, embed.Options{}, e
	}
	return in, embed.Options{TruncateLeft: left, Prompt: prompt}, nil
}

// base64Floats encodes v as OpenAI does: little-endian float32 bytes in
// standard base64.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.cfg.ModelID, "object": "model", "created": 0, "owned_by": "embedpipe"}}})
	return nil
}

type teiEmbedRequest struct {
	teiInputs
	Normalize  *bool `json:"normalize"`
	Dimensions *int  `json:"dimensions"`
}

// teiEmbed serves TEI's POST /embed: an array of vectors. As in TEI,
// normalize defaults to true and truncate to false.
func (s *Server) teiEmbed(w http.ResponseWriter, r *http.Request) *apiError {
	return s.metered("tei", func(m *meter) *apiError {
		var req teiEmbedRequest
		in, o, e := s.readTEI(m, r, &req, &req.teiInputs, "/embed", encoder.KindEmbedding)
		if e != nil {
			return e
		}
		dims, e := s.checkDims(req.Dimensions, "dimensions")
		if e != nil {
			return e
		}
		o.TruncateDim = dims
		// As in TEI, normalize defaults to true, applies to the vector
		// the request gets (after dimensions) and false leaves out the
		// model's own Normalize module; true normalizes a model that has
		// none. The NATS service reads its normalize the same way.
		normalize := req.Normalize
		if normalize == nil {
			yes := true
			normalize = &yes
		}
		workers.SetNormalize(&o, normalize, s.cfg.Model.Info().Normalize)
		em, seqs, e := s.prepare(m, o, in, req.truncate(), "inputs")
		if e != nil {
			return e
		}
		vecs, out, e := s.embed(r.Context(), em, seqs)
		if e != nil {
			return e
		}
		rows := make([][]float32, m.n)
		for i := range m.n {
			rows[i] = vecs[i*out : (i+1)*out]
		}
		writeJSON(w, http.StatusOK, rows)
		return nil
	})
}

type teiTokenizeRequest struct {
	Inputs           json.RawMessage `json:"inputs"`
	AddSpecialTokens *bool           `json:"add_special_tokens"`
	PromptName       *string         `json:"prompt_name"`
}

type teiToken struct {
	ID      int32  `json:"id"`
	Text    string `json:"text"`
	Special bool   `json:"special"`
	Start   *int   `json:"start"`
	Stop    *int   `json:"stop"`
}

// teiTokenize serves TEI's POST /tokenize: the ids the model sees for each
// input, truncated at MaxInputTokens, special tokens included unless
// add_special_tokens is false. As in TEI, a text token's text is the bytes
// [start, stop) of the input it comes from; a special token's text is the
// token and its start and stop are null. Where the tokenizer cannot trace
// its tokens back to the text (see encoder.Model.TokenOffsets), every
// token's text is its vocabulary entry and start and stop are null.
func (s *Server) teiTokenize(w http.ResponseWriter, r *http.Request) *apiError {
	var req teiTokenizeRequest
	if e := s.decode(r, &req); e != nil {
		return e
	}
	in, e := parseInput(req.Inputs, "inputs")
	if e != nil {
		return e
	}
	if len(in.ids) > 0 {
		return badRequest("inputs", "inputs must be text")
	}
	if n := in.len(); n > s.cfg.MaxClientBatchSize {
		return tooLarge("inputs", "%d inputs exceed the limit of %d per request", n, s.cfg.MaxClientBatchSize)
	}
	prompt, e := s.prompt(req.PromptName)
	if e != nil {
		return e
	}
	m := s.cfg.Model
	skipSpecial := req.AddSpecialTokens != nil && !*req.AddSpecialTokens
	out := make([][]teiToken, len(in.texts))
	for i, text := range in.texts {
		if text == "" {
			return badRequest("inputs", "inputs[%d] is empty", i)
		}
		ids, offs, known := m.TokenOffsets(text, prompt, s.cfg.MaxInputTokens)
		out[i] = []teiToken{}
		for j, id := range ids {
			tok := teiToken{ID: id, Text: m.IDToToken(id), Special: s.special[id]}
			if offs != nil {
				// Tokens without offsets are the template's special
				// tokens and the prompt's.
				tok.Special = !known[j] && s.special[id]
				if known[j] {
					start, stop := offs[j].Start, offs[j].Stop
					tok.Text, tok.Start, tok.Stop = text[start:stop], &start, &stop
				}
			}
			if tok.Special && skipSpecial {
				continue
			}
			out[i] = append(out[i], tok)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// info serves TEI's GET /info, with embedpipe's own fields added.
func (s *Server) info(w http.ResponseWriter, r *http.Request) *apiError {
	mi := s.cfg.Model.Info()
	bc := s.cfg.Batcher.Config()
	// TEI's model_type: {"embedding": {"pooling"}} (pooling "splade" for
	// a sparse model, as TEI reports one), {"reranker": {id2label,
	// label2id}} for a one-label cross-encoder, {"classifier": …} for
	// more labels; "kind" is embedpipe's own name of it.
	modelType := map[string]any{"embedding": map[string]any{"pooling": mi.Pooling}}
	switch mi.Kind {
	case encoder.KindSparse:
		modelType = map[string]any{"embedding": map[string]any{"pooling": "splade"}}
	case encoder.KindCrossEncoder:
		id2label, label2id := map[string]string{}, map[string]int{}
		for i, l := range mi.CrossEncoder.Labels {
			id2label[strconv.Itoa(i)], label2id[l] = l, i
		}
		name := "reranker"
		if len(mi.CrossEncoder.Labels) > 1 {
			name = "classifier"
		}
		modelType = map[string]any{name: map[string]any{"id2label": id2label, "label2id": label2id}}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model_id":                s.cfg.ModelID,
		"model_sha":               nilIfEmpty(mi.Revision),
		"model_dtype":             "float32",
		"model_type":              modelType,
		"kind":                    mi.Kind,
		"max_concurrent_requests": bc.Queue,
		"max_input_length":        s.cfg.MaxInputTokens,
		"max_batch_tokens":        bc.BatchTokens,
		"max_batch_requests":      nil,
		"max_client_batch_size":   s.cfg.MaxClientBatchSize,
		"max_body_bytes":          s.cfg.MaxBodyBytes,
		"batch_max_wait_ms":       float64(bc.MaxWait) / float64(time.Millisecond),
		"tokenization_workers":    nil,
		"dim":                     mi.Dim,
		"normalize":               mi.Normalize,
		"prompts":                 mi.Prompts,
		"default_prompt":          nilIfEmpty(mi.DefaultPrompt),
		"architecture":            mi.Arch,
		"version":                 "embedpipe",
	})
	return nil
}

// truncateLeft reads TEI's truncation_direction: Right (the default) or
// Left, in any case.
func truncateLeft(d string) (bool, *apiError) {
	switch {
	case d == "" || strings.EqualFold(d, "right"):
		return false, nil
	case strings.EqualFold(d, "left"):
		return true, nil
	}
	return false, badRequest("truncation_direction", "truncation_direction %q: want Left or Right", d)
}

// prompt returns the text of the model's prompt called name (nil: none).
func (s *Server) prompt(name *string) (string, *apiError) {
	if name == nil {
		return "", nil
	}
	p, err := s.cfg.Model.Prompt(*name)
	if err != nil {
		return "", badRequest("prompt_name", "%v", err)
	}
	return p, nil
}

type teiEmbedSparseRequest struct {
	teiInputs
}

// teiSparseValue is one entry of a TEI sparse vector.
type teiSparseValue struct {
	Index int32   `json:"index"`
	Value float32 `json:"value"`
}

// teiEmbedSparse serves TEI's POST /embed_sparse for a sparse (SPLADE)
// model: per input, its positive weights as {index, value} by ascending
// index (the SparseTopK largest when set). The inputs join the shared
// batcher's sparse batches.
func (s *Server) teiEmbedSparse(w http.ResponseWriter, r *http.Request) *apiError {
	return s.metered("tei", func(m *meter) *apiError {
		var req teiEmbedSparseRequest
		in, o, e := s.readTEI(m, r, &req, &req.teiInputs, "/embed_sparse", encoder.KindSparse)
		if e != nil {
			return e
		}
		o.Output = embed.SparseEmbedding
		_, seqs, e := s.prepare(m, o, in, req.truncate(), "inputs")
		if e != nil {
			return e
		}
		var sv encoder.SparseVectors
		if e := batchError(r.Context(), s.cfg.Batcher.EmbedSparse(r.Context(), seqs, encoder.SparseOptions{TopK: s.cfg.SparseTopK}, &sv)); e != nil {
			return e
		}
		out := make([][]teiSparseValue, m.n)
		for i := range m.n {
			idx, val := sv.Vector(i)
			out[i] = make([]teiSparseValue, len(idx))
			for j := range idx {
				out[i][j] = teiSparseValue{Index: idx[j], Value: val[j]}
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

type teiRerankRequest struct {
	Query               *string  `json:"query"`
	Texts               []string `json:"texts"`
	RawScores           bool     `json:"raw_scores"`
	ReturnText          bool     `json:"return_text"`
	Truncate            *bool    `json:"truncate"`
	TruncationDirection string   `json:"truncation_direction"`
}

// teiRank is one entry of TEI's /rerank reply.
type teiRank struct {
	Index int     `json:"index"`
	Text  *string `json:"text,omitempty"`
	Score float32 `json:"score"`
}

// teiRerank serves TEI's POST /rerank for a one-label cross-encoder: each
// text is scored against the query as the pair [CLS] query [SEP] text
// [SEP] (token types 0 then 1, longest_first truncation at
// MaxInputTokens, as embedpipe score), and the reply lists {index, score}
// (text too with return_text) by descending score, ties in input order.
// Scores are after the model's activation unless raw_scores asks for the
// logits. As in TEI, truncate defaults to false: a pair longer than
// MaxInputTokens is refused. The pairs join the shared batcher's pair
// batches.
func (s *Server) teiRerank(w http.ResponseWriter, r *http.Request) *apiError {
	return s.metered("tei", func(m *meter) *apiError {
		var req teiRerankRequest
		if e := s.decode(r, &req); e != nil {
			return e
		}
		if e := s.kindError("/rerank", encoder.KindCrossEncoder); e != nil {
			return e
		}
		if nl := s.cfg.Model.NumLabels(); nl != 1 {
			return wrongModel("/rerank needs a re-ranker with one label, and %s has %d labels", s.cfg.ModelID, nl)
		}
		if req.Query == nil {
			return badRequest("query", "query is required")
		}
		if len(req.Texts) == 0 {
			return badRequest("texts", "texts cannot be empty")
		}
		n := len(req.Texts)
		m.n = n
		s.cfg.Metrics.Request(n)
		if n > s.cfg.MaxClientBatchSize {
			return tooLarge("texts", "%d texts exceed the limit of %d per request", n, s.cfg.MaxClientBatchSize)
		}
		left, e := truncateLeft(req.TruncationDirection)
		if e != nil {
			return e
		}
		if left {
			return badRequest("truncation_direction", "truncation_direction Left is not supported for pairs: embedpipe truncates a (query, text) pair longest_first from the right, as sentence-transformers' CrossEncoder does")
		}
		truncate := req.Truncate != nil && *req.Truncate
		seqs := new(encoder.Batch)
		seqs.Reset()
		lengths := make([]int, n)
		for i, t := range req.Texts {
			n0 := len(seqs.IDs)
			cut, err := s.cfg.Model.AppendPairTo(seqs, *req.Query, t, s.cfg.MaxInputTokens)
			if err != nil {
				return &apiError{status: http.StatusUnprocessableEntity, kind: metrics.ErrTokenizer, param: "texts", msg: fmt.Sprintf("texts[%d]: %v", i, err)}
			}
			if cut && !truncate {
				return tooLarge("texts", "the pair of the query and texts[%d] has more than %d tokens; set truncate or shorten it", i, s.cfg.MaxInputTokens)
			}
			lengths[i] = len(seqs.IDs) - n0
		}
		s.cfg.Metrics.Tokenized(time.Since(m.start), lengths...)
		vals := make([]float32, n)
		var logits, scores []float32
		if req.RawScores {
			logits = vals
		} else {
			scores = vals
		}
		if e := batchError(r.Context(), s.cfg.Batcher.Score(r.Context(), seqs, logits, scores)); e != nil {
			return e
		}
		ranks := make([]teiRank, n)
		for i, v := range vals {
			if math.IsNaN(float64(v)) {
				return &apiError{status: http.StatusInternalServerError, kind: metrics.ErrBackend, msg: fmt.Sprintf("score of texts[%d] is NaN", i)}
			}
			ranks[i] = teiRank{Index: i, Score: v}
			if req.ReturnText {
				ranks[i].Text = &req.Texts[i]
			}
		}
		slices.SortStableFunc(ranks, func(a, b teiRank) int { return cmp.Compare(b.Score, a.Score) })
		writeJSON(w, http.StatusOK, ranks)
		return nil
	})
}
