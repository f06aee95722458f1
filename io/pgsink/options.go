package pgsink

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Index is the vector index built by Finish.
type Index string

// Index methods.
const (
	IndexNone    Index = "none"
	IndexHNSW    Index = "hnsw"
	IndexIVFFlat Index = "ivfflat"
)

// ParseIndex parses hnsw, ivfflat or none ("" is none).
func ParseIndex(s string) (Index, error) {
	switch Index(s) {
	case "", IndexNone:
		return IndexNone, nil
	case IndexHNSW, IndexIVFFlat:
		return Index(s), nil
	}
	return "", fmt.Errorf("%w: index %q (want hnsw, ivfflat or none)", ErrOptions, s)
}

// Distance is the distance the index serves.
type Distance string

// Distances. Cosine, L2 and inner product apply to vector and halfvec
// columns, Hamming and Jaccard to bit columns.
const (
	Cosine  Distance = "cosine"
	L2      Distance = "l2"
	IP      Distance = "ip"
	Hamming Distance = "hamming"
	Jaccard Distance = "jaccard"
)

// ParseDistance parses cosine, l2, ip, hamming or jaccard ("" is the
// default of the column type: cosine, or hamming for bit).
func ParseDistance(s string) (Distance, error) {
	switch Distance(s) {
	case "", Cosine, L2, IP, Hamming, Jaccard:
		return Distance(s), nil
	}
	return "", fmt.Errorf("%w: distance %q (want cosine, l2, ip, hamming or jaccard)", ErrOptions, s)
}

// Options configure a Sink.
type Options struct {
	// URL is the libpq connection URL or key/value string.
	URL string
	// Table is the target table, optionally schema-qualified (schema.table).
	Table string
	// IDColumn names the pass-through column whose values are the rows'
	// ids. Empty: the table gets a text column "id" filled from
	// Batch.Keys.
	IDColumn string
	// ChunkColumn names an int32 pass-through column that, with the id,
	// forms the primary key (one row per chunk of a document); empty: the id
	// alone is the key.
	ChunkColumn string
	// EmbeddingColumn names the embedding column of the records and of the
	// table (default "embedding").
	EmbeddingColumn string
	// Precision is the records' embedding precision: float32 (vector),
	// float16 (halfvec), binary or ubinary (bit, packed 8 dimensions a
	// byte as sentence-transformers' quantize_embeddings), or sparse
	// (sparsevec(Dim): a struct<indices: list<int32>, values: list<float32>>
	// column of a sparse encoder, Dim its vocabulary size; see sparse.go).
	// int8 and uint8 are refused: pgvector has no 8-bit integer vectors.
	Precision string
	// Dim is the embedding dimension (bits for binary precisions; 0: taken
	// from the record schema, 8 bits a byte for binary).
	Dim int
	// Index is built by Finish (default none); Distance picks its operator
	// class.
	Index    Index
	Distance Distance
	// IndexMemory, when set, is the maintenance_work_mem of the index
	// build (a PostgreSQL size such as "1GB"), for that transaction only.
	// HNSW builds much faster when the graph fits in it; the server's
	// default is 64 MB.
	IndexMemory string
}

// column kinds of the embedding.
type vecKind int

const (
	kVector vecKind = iota
	kHalfvec
	kBit
	kSparsevec
)

func (k vecKind) String() string {
	switch k {
	case kHalfvec:
		return "halfvec"
	case kBit:
		return "bit"
	case kSparsevec:
		return "sparsevec"
	}
	return "vector"
}

// pgvector limits (0.8): the column types hold up to 16,000 dimensions; HNSW
// and IVFFlat index up to 2,000 (vector), 4,000 (halfvec) or 64,000 (bit).
const (
	maxVectorDim = 16000
	maxBitDim    = 83886080
)

func (k vecKind) maxIndexDim() int {
	switch k {
	case kHalfvec:
		return 4000
	case kBit:
		return 64000
	case kSparsevec:
		// HNSW bounds a sparse vector's non-zero entries (checked per row,
		// SparseEntryLimit), not its dimensions.
		return maxSparseDim
	}
	return 2000
}

func (k vecKind) maxDim() int {
	switch k {
	case kBit:
		return maxBitDim
	case kSparsevec:
		return maxSparseDim
	}
	return maxVectorDim
}

// opClass is the operator class of an index on kind k for distance d.
func (k vecKind) opClass(d Distance) (string, error) {
	if d == "" {
		d = Cosine
		if k == kBit {
			d = Hamming
		}
	}
	switch k {
	case kBit:
		switch d {
		case Hamming:
			return "bit_hamming_ops", nil
		case Jaccard:
			return "bit_jaccard_ops", nil
		}
	default:
		switch d {
		case Cosine:
			return k.String() + "_cosine_ops", nil
		case L2:
			return k.String() + "_l2_ops", nil
		case IP:
			return k.String() + "_ip_ops", nil
		}
	}
	return "", fmt.Errorf("%w: distance %s does not apply to %s columns", ErrOptions, d, k)
}

func precisionKind(p string) (vecKind, error) {
	switch p {
	case "", "float32":
		return kVector, nil
	case "float16":
		return kHalfvec, nil
	case "binary", "ubinary":
		return kBit, nil
	case PrecisionSparse:
		return kSparsevec, nil
	case "int8", "uint8":
		return 0, fmt.Errorf("%w: %s: pgvector has no 8-bit integer vector type (storing them as float vectors would change every distance); use float32 (vector), float16 (halfvec) or binary (bit)", ErrPrecision, p)
	}
	return 0, fmt.Errorf("%w: precision %q (want float32, float16, binary, ubinary or sparse)", ErrPrecision, p)
}

// indexMemory is the form IndexMemory takes: a PostgreSQL memory size.
var indexMemory = regexp.MustCompile(`^[1-9][0-9]{0,9}(kB|MB|GB|TB)$`)

// CheckIndexMemory reports whether s is "" or a PostgreSQL memory size
// such as 512MB or 2GB (units kB, MB, GB, TB), as IndexMemory takes.
func CheckIndexMemory(s string) error {
	if s != "" && !indexMemory.MatchString(s) {
		return fmt.Errorf("%w: index memory %q (want a size such as 512MB or 2GB: kB, MB, GB or TB)", ErrOptions, s)
	}
	return nil
}

// IsURL reports whether s names a PostgreSQL server (postgres:// or
// postgresql://), the form --output takes for this sink.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns s with any password removed, for messages and logs.
func Redact(s string) string {
	if IsURL(s) {
		u, err := url.Parse(s)
		if err != nil {
			return "postgres://(unparsable URL)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// key=value form: drop password=... (quoted or not).
	var out []string
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "password=") {
			f = "password=xxxxx"
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// WithoutPassword returns the postgres:// URL s with its password (in the
// user info or a password parameter) removed, and whether there was one:
// the form a job record keeps, whose readers get the password from
// PGPASSWORD or ~/.pgpass instead.
func WithoutPassword(s string) (string, bool, error) {
	u, err := url.Parse(s)
	if err != nil || !IsURL(s) {
		return "", false, fmt.Errorf("%w: %s is not a postgres:// URL", ErrOptions, Redact(s))
	}
	had := false
	if _, ok := u.User.Password(); ok {
		u.User = url.User(u.User.Username())
		had = true
	}
	if q := u.Query(); q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
		had = true
	}
	return u.String(), had, nil
}
