package pgsink

import (
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/pgvector/pgvector-go"
)

// PrecisionSparse is the Options.Precision of a sparse encoder's output: the
// records' embedding column is a struct<indices: list<int32>, values:
// list<float32>> (indices 0-based and ascending, as the pipeline writes
// them) and the table's column is sparsevec(Options.Dim), Dim being the
// vocabulary size.
const PrecisionSparse = "sparse"

// pgvector's sparsevec limits (0.8): a value holds at most MaxSparseEntries
// non-zero entries of at most 1,000,000,000 dimensions, and an HNSW index
// takes only vectors of at most MaxSparseIndexEntries entries (IVFFlat does
// not index sparsevec at all).
const (
	MaxSparseEntries      = 16000
	MaxSparseIndexEntries = 1000
	maxSparseDim          = 1000000000
)

// SparseEntryLimit is the most non-zero entries a sparse vector may have to
// be written with o: MaxSparseEntries, or MaxSparseIndexEntries when o builds
// an HNSW index.
func SparseEntryLimit(o Options) int {
	if o.Index == IndexHNSW {
		return MaxSparseIndexEntries
	}
	return MaxSparseEntries
}

// checkSparse validates the options of a sparsevec load: a dimension (the
// vocabulary size) within pgvector's limit and an index pgvector can build
// on sparsevec.
func checkSparse(o *Options) error {
	if o.Dim <= 0 {
		return fmt.Errorf("%w: a sparse embedding column needs its dimension (the vocabulary size)", ErrOptions)
	}
	if o.Dim > maxSparseDim {
		return fmt.Errorf("%w: sparsevec(%d): pgvector's sparsevec holds 1 to %d dimensions", ErrDimension, o.Dim, maxSparseDim)
	}
	if o.Index == IndexIVFFlat {
		return fmt.Errorf("%w: pgvector's IVFFlat does not index sparsevec columns; use --create-index hnsw (sparse vectors of at most %d non-zero entries) or none", ErrOptions, MaxSparseIndexEntries)
	}
	return nil
}

// sparseFields are the child fields of the records' sparse vector struct.
type sparseFields struct{ indices, values int }

// newSparseEmbedding checks the record field f, a sparse vector struct, and
// returns the sparsevec(o.Dim) embedding column.
func newSparseEmbedding(f arrow.Field, src int, o *Options) (*embedding, error) {
	if err := checkSparse(o); err != nil {
		return nil, err
	}
	if _, err := sparseLayout(f.Type); err != nil {
		return nil, fmt.Errorf("%w: embedding column %q: %v", ErrOptions, f.Name, err)
	}
	return &embedding{name: f.Name, src: src, kind: kSparsevec, dim: o.Dim, maxEntries: SparseEntryLimit(*o)}, nil
}

// sparseLayout finds the indices (list of int32) and values (list of
// float32) fields of a sparse vector struct type.
func sparseLayout(t arrow.DataType) (sparseFields, error) {
	st, ok := t.(*arrow.StructType)
	if !ok {
		return sparseFields{}, fmt.Errorf("is %s, want struct<indices: list<int32>, values: list<float32>>", t)
	}
	l := sparseFields{indices: -1, values: -1}
	for i, f := range st.Fields() {
		lt, ok := f.Type.(arrow.ListLikeType)
		switch {
		case f.Name == "indices" && ok && arrow.TypeEqual(lt.Elem(), arrow.PrimitiveTypes.Int32):
			l.indices = i
		case f.Name == "values" && ok && arrow.TypeEqual(lt.Elem(), arrow.PrimitiveTypes.Float32):
			l.values = i
		}
	}
	if l.indices < 0 || l.values < 0 || st.NumFields() != 2 {
		return l, fmt.Errorf("is %s, want struct<indices: list<int32>, values: list<float32>>", t)
	}
	return l, nil
}

// sparseValues reads the sparse vectors of one record's embedding column.
type sparseValues struct {
	e       *embedding
	st      *array.Struct
	idx     array.ListLike
	val     array.ListLike
	indices []int32
	values  []float32
}

func (e *embedding) sparseValues(a arrow.Array) (*sparseValues, error) {
	st, ok := a.(*array.Struct)
	if !ok {
		return nil, fmt.Errorf("%w: embedding column %q is %s, the table holds %s", ErrRow, e.name, a.DataType(), e.pgType())
	}
	l, err := sparseLayout(st.DataType())
	if err != nil {
		return nil, fmt.Errorf("%w: embedding column %q %v", ErrRow, e.name, err)
	}
	v := &sparseValues{e: e, st: st}
	v.idx, _ = st.Field(l.indices).(array.ListLike)
	v.val, _ = st.Field(l.values).(array.ListLike)
	iv, ok1 := v.idx.ListValues().(*array.Int32)
	fv, ok2 := v.val.ListValues().(*array.Float32)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: embedding column %q holds %s and %s", ErrRow, e.name, v.idx.ListValues().DataType(), v.val.ListValues().DataType())
	}
	v.indices, v.values = iv.Int32Values(), fv.Float32Values()
	return v, nil
}

// at returns row i as a pgvector.SparseVector, or nil for a null vector.
// It refuses what pgvector would refuse, naming the reason: entries out of
// order or outside the dimension, values that are not finite, and more
// non-zero entries than the table takes. Zero values are left out, as
// pgvector's text input does: the vector is the same.
func (v *sparseValues) at(i int) (any, error) {
	if v.st.IsNull(i) {
		return nil, nil
	}
	if v.idx.IsNull(i) || v.val.IsNull(i) {
		return nil, fmt.Errorf("sparse vector %q has null indices or values", v.e.name)
	}
	ilo, ihi := v.idx.ValueOffsets(i)
	vlo, vhi := v.val.ValueOffsets(i)
	idx, val := v.indices[ilo:ihi], v.values[vlo:vhi]
	if len(idx) != len(val) {
		return nil, fmt.Errorf("sparse vector %q has %d indices and %d values", v.e.name, len(idx), len(val))
	}
	m := make(map[int32]float32, len(idx))
	for k, x := range idx {
		if x < 0 || int(x) >= v.e.dim {
			return nil, fmt.Errorf("sparse vector %q: index %d outside sparsevec(%d)", v.e.name, x, v.e.dim)
		}
		if k > 0 && x <= idx[k-1] {
			return nil, fmt.Errorf("sparse vector %q: index %d after %d; indices must ascend without repeats", v.e.name, x, idx[k-1])
		}
		f := val[k]
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("sparse vector %q: index %d has value %v, which sparsevec cannot hold", v.e.name, x, f)
		}
		if f != 0 {
			m[x] = f
		}
	}
	if len(m) > v.e.maxEntries {
		return nil, fmt.Errorf("sparse vector %q has %d non-zero entries; %s", v.e.name, len(m), sparseLimitText(v.e.maxEntries))
	}
	return pgvector.NewSparseVectorFromMap(m, int32(v.e.dim)), nil
}

// sparseLimitText says which pgvector limit n is and how to stay within it.
func sparseLimitText(n int) string {
	why := "pgvector's sparsevec holds at most"
	if n == MaxSparseIndexEntries {
		why = "pgvector's HNSW index takes sparse vectors of at most"
	}
	return fmt.Sprintf("%s %d (--sparse-top-k %d keeps the largest)", why, n, n)
}
