package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/jackc/pgx/v5"
)

// Batches yields the batches of one transaction, in order, to yield, and
// returns the first error yield returns. The caller keeps ownership of each
// Record: it may release it once yield returns.
type Batches func(yield func(Batch) error) error

// WriteTx loads every batch that batches yields in one transaction together
// with the progress row (runKey, seq), which records their total row count:
// a NATS task's rows and its task record commit together or not at all.
// When (runKey, seq) is already recorded it yields nothing and returns
// Skipped, so a redelivered or re-run task changes nothing. The batches'
// own RunKey and Seq are ignored.
func (s *Sink) WriteTx(ctx context.Context, runKey string, seq int, batches Batches) (Result, error) {
	if runKey == "" {
		return Result{}, fmt.Errorf("%w: a task load needs a run key", ErrOptions)
	}
	var res Result
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO "+s.progress+" (target, run_key, seq, rows) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
			s.o.Table, runKey, seq)
		if err != nil {
			return fmt.Errorf("%w: %s: progress row: %s", ErrWrite, s.o.Table, describe(err))
		}
		if tag.RowsAffected() == 0 {
			return errSkip
		}
		var total int64
		err = batches(func(b Batch) error {
			rows, err := s.rows(b)
			if err != nil {
				return err
			}
			ins, upd, err := s.writeRows(ctx, tx, rows, true, true)
			if err != nil {
				where := s.o.Table
				if b.Where != "" {
					where += ", " + b.Where
				}
				return fmt.Errorf("%w: %s: %d rows: %s", ErrWrite, where, len(rows), describe(err))
			}
			res.Inserted += ins
			res.Updated += upd
			total += int64(len(rows))
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE "+s.progress+" SET rows = $4 WHERE target = $1 AND run_key = $2 AND seq = $3",
			s.o.Table, runKey, seq, total); err != nil {
			return fmt.Errorf("%w: %s: progress row: %s", ErrWrite, s.o.Table, describe(err))
		}
		return nil
	})
	if errors.Is(err, errSkip) {
		return Result{Skipped: true}, nil
	}
	if err != nil {
		if !errors.Is(err, ErrWrite) && !errors.Is(err, ErrRow) && !errors.Is(err, ErrOptions) && ctx.Err() == nil {
			// The batches' own error (reading the rows).
			return Result{}, err
		}
		if ctx.Err() != nil && !errors.Is(err, ErrRow) {
			return Result{}, fmt.Errorf("%w: %s: %w", ErrWrite, s.o.Table, ctx.Err())
		}
		return Result{}, err
	}
	return res, nil
}

// dial connects to o.URL for the table-level calls that need no record
// schema.
func dial(ctx context.Context, o Options) (*Sink, error) {
	s, err := newSink(o)
	if err != nil {
		return nil, err
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Recorded returns the progress rows of o.Table whose run key starts with
// prefix: how many there are and the rows they record. The workers of a
// NATS job check it against the job's task results before they finish the
// job. A table never loaded has none.
func Recorded(ctx context.Context, o Options, prefix string) (n int, rows int64, err error) {
	s, err := dial(ctx, o)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close(context.Background())
	var have bool
	if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.progress).Scan(&have); err != nil || !have {
		return 0, 0, wrapWrite(err, o.Table, "read progress")
	}
	err = s.conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(rows), 0) FROM "+s.progress+" WHERE target = $1 AND starts_with(run_key, $2)",
		o.Table, prefix).Scan(&n, &rows)
	return n, rows, wrapWrite(err, o.Table, "read progress")
}

// TaskDone reports whether (runKey, seq) is recorded in o.Table's progress
// table, and the rows it recorded, so that a redelivered task whose load
// committed is not embedded again.
func TaskDone(ctx context.Context, o Options, runKey string, seq int) (rows int64, done bool, err error) {
	s, err := dial(ctx, o)
	if err != nil {
		return 0, false, err
	}
	defer s.Close(context.Background())
	var have bool
	if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.progress).Scan(&have); err != nil || !have {
		return 0, false, wrapWrite(err, o.Table, "read progress")
	}
	err = s.conn.QueryRow(ctx, "SELECT rows FROM "+s.progress+" WHERE target = $1 AND run_key = $2 AND seq = $3", o.Table, runKey, seq).Scan(&rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return rows, err == nil, wrapWrite(err, o.Table, "read progress")
}

func wrapWrite(err error, table, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrWrite, table, what, describe(err))
}

// embeddingOf reads the type of the embedding column of the table: exists
// is false when there is no such table; kind and dim are set when the
// column is a vector, halfvec or bit column.
func (s *Sink) embeddingOf(ctx context.Context) (exists bool, typ string, kind vecKind, dim int, err error) {
	if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.table).Scan(&exists); err != nil || !exists {
		return false, "", 0, 0, wrapWrite(err, s.o.Table, "look up table")
	}
	err = s.conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped`, s.table, s.o.EmbeddingColumn).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, "", 0, 0, nil
	}
	if err != nil {
		return true, "", 0, 0, wrapWrite(err, s.o.Table, "look up table")
	}
	for _, k := range []vecKind{kVector, kHalfvec, kBit, kSparsevec} {
		if rest, ok := strings.CutPrefix(typ, k.String()+"("); ok {
			if d, err := strconv.Atoi(strings.TrimSuffix(rest, ")")); err == nil {
				return true, typ, k, d, nil
			}
		}
	}
	return true, typ, 0, 0, nil
}

// CheckTable validates o and the table against the rows a run will write,
// before any embedding: it connects (ErrConnect), makes sure pgvector is
// there (ErrExtension), plans the table from passThrough (the input's
// columns, which a run keeps; the id column must be one of them when
// o.IDColumn is set) and, when the table exists, compares its shape
// (ErrTableShape) with the embedding dimension the table already has. It
// changes nothing but the extension. The model's dimension is checked when
// the rows come (Open), as is the whole table for sparse precision.
func CheckTable(ctx context.Context, o Options, passThrough *arrow.Schema) error {
	if err := Check(ctx, o); err != nil {
		return err
	}
	if kind, _ := precisionKind(o.Precision); kind == kSparsevec {
		// The sparse column's layout comes from the sparse encoder; Open
		// checks it and the table when the rows come.
		return nil
	}
	s, err := dial(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	exists, _, _, dim, err := s.embeddingOf(ctx)
	if err != nil {
		return err
	}
	// Without a table the dimension is the model's, unknown here: any
	// width plans the other columns. With one, its dimension is the one
	// the rows must have (of the run's precision: another type is refused).
	width := 1
	if want, _ := precisionKind(o.Precision); exists && dim > 0 {
		width = dim
		if want == kBit {
			width = (dim + 7) / 8
			s.o.Dim = dim
		}
	}
	elem := arrow.DataType(arrow.PrimitiveTypes.Float32)
	switch o.Precision {
	case "float16":
		elem = arrow.FixedWidthTypes.Float16
	case "binary":
		elem = arrow.PrimitiveTypes.Int8
	case "ubinary":
		elem = arrow.PrimitiveTypes.Uint8
	}
	fields := append([]arrow.Field(nil), passThrough.Fields()...)
	for _, f := range fields {
		if f.Name == s.o.EmbeddingColumn {
			return fmt.Errorf("%w: the input already has a column %q; choose another --output-column", ErrOptions, f.Name)
		}
	}
	fields = append(fields, arrow.Field{Name: s.o.EmbeddingColumn, Type: arrow.FixedSizeListOf(int32(width), elem), Nullable: true})
	if err := s.plan(arrow.NewSchema(fields, nil)); err != nil {
		return fmt.Errorf("table %s: %w", o.Table, err)
	}
	if !exists {
		return nil
	}
	return pgx.BeginTxFunc(ctx, s.conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := s.checkShape(ctx, tx); err != nil {
			if errors.Is(err, ErrTableShape) {
				return err
			}
			return wrapWrite(err, o.Table, "check shape")
		}
		return nil
	})
}

// FinishTable builds the index o asks for on the table's embedding column
// and analyzes the table, as Sink.Finish does, for a finisher that holds
// no Sink (the worker that finishes a NATS job). The column's type (vector,
// halfvec or bit) chooses the operator class.
func FinishTable(ctx context.Context, o Options) (Report, error) {
	s, err := dial(ctx, o)
	if err != nil {
		return Report{}, err
	}
	defer s.Close(context.Background())
	exists, typ, kind, dim, err := s.embeddingOf(ctx)
	if err != nil {
		return Report{}, err
	}
	if !exists {
		return Report{}, fmt.Errorf("%w: table %s does not exist", ErrWrite, o.Table)
	}
	if dim == 0 {
		return Report{}, fmt.Errorf("%w: table %s: column %q is %q, not a pgvector column", ErrTableShape, o.Table, s.o.EmbeddingColumn, typ)
	}
	s.emb = &embedding{name: s.o.EmbeddingColumn, kind: kind, dim: dim}
	if s.o.Index != IndexNone && dim > kind.maxIndexDim() {
		return Report{}, fmt.Errorf("%w: %s(%d): pgvector indexes %s columns of at most %d dimensions", ErrDimension, kind, dim, kind, kind.maxIndexDim())
	}
	return s.Finish(ctx)
}
