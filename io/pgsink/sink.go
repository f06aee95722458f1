package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
)

// ProgressTable is the table, in the target's schema, that records which
// chunks of which runs are loaded: (target, run_key, seq) is its key.
const ProgressTable = "embedpipe_progress"

// Sink loads batches into one table over one connection. A Sink is not safe
// for concurrent use; open one per goroutine (they may share a table).
type Sink struct {
	o        Options
	conn     *pgx.Conn
	table    string // quoted
	tableID  pgx.Identifier
	progress string // quoted
	cols     []column
	emb      *embedding
	key      []string // primary key column names
	names    []string // COPY column names: cols then the embedding
	upsert   string
	staging  string
	// direct is set while batches go by COPY straight into the target (no
	// id of the batch was there before); the first conflict clears it and
	// every later batch goes through staging and upsert.
	direct bool
}

// Batch is one transaction's worth of rows.
type Batch struct {
	// RunKey and Seq identify the batch in the progress table: a batch whose
	// (RunKey, Seq) is already recorded is skipped as a whole. An empty
	// RunKey writes no progress row (streaming upserts, idempotent by id).
	RunKey string
	Seq    int
	// Record holds the rows: the schema given to Open. The caller keeps
	// ownership; Write only reads it.
	Record arrow.Record
	// Keys are the rows' ids when Options.IDColumn is empty, one per row.
	Keys []string
	// Where names the batch in error messages (e.g. "data.parquet, chunk 3").
	Where string
}

// Result says what one Write did.
type Result struct {
	// Skipped is set when the batch was already recorded as loaded.
	Skipped bool
	// Inserted and Updated count new ids and ids that were already there.
	Inserted, Updated int64
}

// Open connects to o.URL, checks pgvector, creates the target table from
// schema (the records' schema: pass-through columns and the embedding
// column) if it is missing, refuses one of another shape, and prepares the
// staging table. ctx bounds the connection and the set-up statements.
func Open(ctx context.Context, o Options, schema *arrow.Schema) (*Sink, error) {
	s, err := newSink(o)
	if err != nil {
		return nil, err
	}
	if err := s.plan(schema); err != nil {
		return nil, fmt.Errorf("table %s: %w", o.Table, err)
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		s.conn.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// newSink checks o's table and index memory and returns a Sink, not yet
// connected, for o with its defaults filled in (embedding column
// "embedding", index IndexNone) and the table's and progress table's names.
func newSink(o Options) (*Sink, error) {
	if o.Table == "" {
		return nil, fmt.Errorf("%w: no table (--table NAME)", ErrOptions)
	}
	if err := CheckIndexMemory(o.IndexMemory); err != nil {
		return nil, err
	}
	if o.EmbeddingColumn == "" {
		o.EmbeddingColumn = "embedding"
	}
	if o.Index == "" {
		o.Index = IndexNone
	}
	return &Sink{o: o, table: ident(o.Table), tableID: pgx.Identifier(strings.Split(o.Table, ".")), progress: progressTable(o.Table)}, nil
}

// plan derives the table's columns from the record schema.
func (s *Sink) plan(schema *arrow.Schema) error {
	o := &s.o
	embIdx := schema.FieldIndices(o.EmbeddingColumn)
	if len(embIdx) != 1 {
		return fmt.Errorf("%w: the records have no single embedding column %q", ErrOptions, o.EmbeddingColumn)
	}
	var err error
	if s.emb, err = newEmbedding(schema.Field(embIdx[0]), embIdx[0], o); err != nil {
		return err
	}
	if _, err := s.emb.kind.opClass(o.Distance); err != nil && o.Index != IndexNone {
		return err
	}
	if o.IDColumn == "" {
		if schema.HasField("id") {
			return fmt.Errorf("%w: the input has a column \"id\": pass --id-column id to use it as the key, or rename it", ErrOptions)
		}
		s.cols = append(s.cols, column{name: "id", pgType: "text", src: -1, text: true})
		s.key = []string{"id"}
	}
	seen := map[string]bool{}
	for i, f := range schema.Fields() {
		if i == s.emb.src {
			continue
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: the records have two columns named %q", ErrOptions, f.Name)
		}
		seen[f.Name] = true
		t, err := pgTypeOf(f.Type)
		if err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
		if v, ok := f.Metadata.GetValue(PGTypeKey); ok && v == "jsonb" && t == "text" {
			t = "jsonb"
		}
		s.cols = append(s.cols, column{name: f.Name, pgType: t, src: i, text: t == "text"})
	}
	if o.IDColumn != "" {
		c := s.column(o.IDColumn)
		if c == nil {
			return fmt.Errorf("%w: id column %q is not in the input", ErrOptions, o.IDColumn)
		}
		switch c.pgType {
		case "text", "bigint", "integer", "smallint", "bytea":
		default:
			return fmt.Errorf("%w: id column %q is %s; want a string, binary or integer column", ErrOptions, o.IDColumn, c.pgType)
		}
		s.key = []string{o.IDColumn}
	}
	if o.ChunkColumn != "" {
		c := s.column(o.ChunkColumn)
		if c == nil || c.pgType != "integer" {
			return fmt.Errorf("%w: chunk column %q must be an int32 column of the records", ErrOptions, o.ChunkColumn)
		}
		s.key = append(s.key, o.ChunkColumn)
	}
	for _, c := range s.cols {
		s.names = append(s.names, c.name)
	}
	s.names = append(s.names, s.emb.name)
	return nil
}

func (s *Sink) column(name string) *column {
	for i := range s.cols {
		if s.cols[i].name == name {
			return &s.cols[i]
		}
	}
	return nil
}

func (s *Sink) connect(ctx context.Context) error {
	where := Redact(s.o.URL)
	cfg, err := pgx.ParseConfig(s.o.URL)
	if err != nil {
		// pgx's parse errors may quote the URL: keep only a redacted form.
		return fmt.Errorf("%w: %s: %s", ErrOptions, where, Redact(err.Error()))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	s.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w to %s: %s", ErrConnect, where, scrub(err.Error(), cfg.Password))
	}
	return nil
}

// scrub removes a password from a driver message.
func scrub(msg, password string) string {
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return msg
}

func (s *Sink) setup(ctx context.Context) error {
	c := s.conn
	if err := s.ensureExtension(ctx); err != nil {
		return err
	}
	if err := pgxvec.RegisterTypes(ctx, c); err != nil {
		return fmt.Errorf("%w: %w", ErrExtension, err)
	}
	// Several workers may open the same new table at once: creation and the
	// shape check run under one advisory lock per table.
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('embedpipe:' || $1))", s.o.Table); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.progress+" (target text NOT NULL, run_key text NOT NULL, seq integer NOT NULL, rows bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, run_key, seq))"); err != nil {
			return fmt.Errorf("create %s: %w", ProgressTable, err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.table).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return s.checkShape(ctx, tx)
		}
		if _, err := tx.Exec(ctx, s.createSQL()); err != nil {
			return fmt.Errorf("create table %s: %w", s.o.Table, err)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrTableShape) {
			return err
		}
		return fmt.Errorf("%w: table %s: %w", ErrWrite, s.o.Table, err)
	}
	s.staging = ident("embedpipe_staging")
	if _, err := c.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+s.staging+" (LIKE "+s.table+") ON COMMIT DELETE ROWS"); err != nil {
		return fmt.Errorf("%w: staging table for %s: %w", ErrWrite, s.o.Table, err)
	}
	s.upsert = s.upsertSQL()
	s.direct = true
	return nil
}

// progressTable is the quoted name of the progress table beside table.
func progressTable(table string) string {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		return ident(table[:i]) + "." + ident(ProgressTable)
	}
	return ident(ProgressTable)
}

func (s *Sink) ensureExtension(ctx context.Context) error {
	c := s.conn
	var have bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')").Scan(&have); err != nil {
		return fmt.Errorf("%w: %w", ErrConnect, err)
	}
	if !have {
		if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector"); err != nil {
			return fmt.Errorf("%w: database %s has no vector extension and it could not be created (%s); install pgvector and run CREATE EXTENSION vector as a superuser", ErrExtension, c.Config().Database, describe(err))
		}
	}
	return nil
}

func (s *Sink) createSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (", s.table)
	for _, c := range s.cols {
		fmt.Fprintf(&b, "%s %s", ident(c.name), c.pgType)
		if s.isKey(c.name) {
			b.WriteString(" NOT NULL")
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "%s %s, PRIMARY KEY (%s))", ident(s.emb.name), s.emb.pgType(), identList(s.key))
	return b.String()
}

func (s *Sink) isKey(name string) bool {
	for _, k := range s.key {
		if k == name {
			return true
		}
	}
	return false
}

func identList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = ident(n)
	}
	return strings.Join(q, ", ")
}

// checkShape compares the existing table with the planned one: the same
// columns with the same types and the same primary key, or ErrTableShape
// saying what differs.
func (s *Sink) checkShape(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, s.table)
	if err != nil {
		return err
	}
	have := map[string]string{}
	var order []string
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return err
		}
		have[n] = t
		order = append(order, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[string]string{s.emb.name: s.emb.pgType()}
	for _, c := range s.cols {
		want[c.name] = c.pgType
	}
	var diffs []string
	for _, n := range s.names {
		switch t, ok := have[n]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("has no column %q (this run writes %s)", n, want[n]))
		case t != want[n]:
			diffs = append(diffs, fmt.Sprintf("column %q is %s, this run writes %s", n, t, want[n]))
		}
	}
	for _, n := range order {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("has column %q (%s) that this run does not write", n, have[n]))
		}
	}
	var pk []string
	prow, err := tx.Query(ctx, `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.ord`, s.table)
	if err != nil {
		return err
	}
	for prow.Next() {
		var n string
		if err := prow.Scan(&n); err != nil {
			return err
		}
		pk = append(pk, n)
	}
	if err := prow.Err(); err != nil {
		return err
	}
	if strings.Join(pk, ",") != strings.Join(s.key, ",") {
		diffs = append(diffs, fmt.Sprintf("primary key is (%s), this run upserts by (%s)", strings.Join(pk, ", "), strings.Join(s.key, ", ")))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: table %s %s; it is left unchanged (choose another --table or drop it)", ErrTableShape, s.o.Table, strings.Join(diffs, "; "))
	}
	return nil
}

func (s *Sink) upsertSQL() string {
	cols := identList(s.names)
	var set []string
	for _, n := range s.names {
		if !s.isKey(n) {
			set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", ident(n), ident(n)))
		}
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf("WITH u AS (INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT (%s) %s RETURNING (xmax = 0) AS ins) SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
		s.table, cols, cols, s.staging, identList(s.key), action)
}

// Write loads b in one transaction with its progress row. It returns
// Skipped when (b.RunKey, b.Seq) is already recorded. Rows are checked
// before anything is sent, so a bad row fails the batch with an error
// naming it and writes nothing.
func (s *Sink) Write(ctx context.Context, b Batch) (Result, error) {
	var res Result
	rows, err := s.rows(b)
	if err != nil {
		return res, err
	}
	where := s.o.Table
	if b.Where != "" {
		where += ", " + b.Where
	}
	err = pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if b.RunKey != "" {
			tag, err := tx.Exec(ctx, "INSERT INTO "+s.progress+" (target, run_key, seq, rows) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
				s.o.Table, b.RunKey, b.Seq, len(rows))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				res.Skipped = true
				return errSkip
			}
		}
		var err error
		res.Inserted, res.Updated, err = s.writeRows(ctx, tx, rows, b.RunKey != "", false)
		return err
	})
	if errors.Is(err, errSkip) {
		return Result{Skipped: true}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s: %d rows: %s", ErrWrite, where, len(rows), describe(err))
	}
	return res, nil
}

var errSkip = errors.New("batch already loaded")

// writeRows writes rows in transaction tx: by COPY straight into the target
// while no id was there before (direct, for loads with progress rows), else
// by COPY into the staging table and an upsert from it. more says that
// other batches follow in the same transaction, so staging is emptied
// after the upsert instead of at commit.
func (s *Sink) writeRows(ctx context.Context, tx pgx.Tx, rows [][]any, direct, more bool) (inserted, updated int64, err error) {
	if s.direct && direct {
		// Fast path: most loads only add new ids, and a COPY into the
		// target writes each row once instead of twice.
		ok, err := s.copyDirect(ctx, tx, rows)
		if err != nil || ok {
			return int64(len(rows)), 0, err
		}
		s.direct = false
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"embedpipe_staging"}, s.names, pgx.CopyFromRows(rows)); err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRow(ctx, s.upsert).Scan(&inserted, &updated); err != nil {
		return 0, 0, err
	}
	if more {
		if _, err := tx.Exec(ctx, "TRUNCATE "+s.staging); err != nil {
			return 0, 0, err
		}
	}
	return inserted, updated, nil
}

// copyDirect copies rows into the target inside a savepoint. It returns
// false (and leaves the transaction as it was) when an id is already
// there, so the caller upserts instead.
func (s *Sink) copyDirect(ctx context.Context, tx pgx.Tx, rows [][]any) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	_, err = sp.CopyFrom(ctx, s.tableID, s.names, pgx.CopyFromRows(rows))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return false, sp.Rollback(ctx)
	}
	if err != nil {
		return false, err
	}
	return true, sp.Commit(ctx)
}

func describe(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Detail != "" {
			msg += " (" + pe.Detail + ")"
		}
		if pe.Where != "" {
			msg += " [" + pe.Where + "]"
		}
		return msg
	}
	return err.Error()
}

// rows converts the batch to COPY rows, checking ids and values.
func (s *Sink) rows(b Batch) ([][]any, error) {
	rec := b.Record
	n := int(rec.NumRows())
	where := s.o.Table
	if b.Where != "" {
		where += ", " + b.Where
	}
	if s.o.IDColumn == "" && len(b.Keys) != n {
		return nil, fmt.Errorf("%w: %s: %d keys for %d rows", ErrRow, where, len(b.Keys), n)
	}
	if int(rec.NumCols()) != len(s.cols)+1-boolInt(s.o.IDColumn == "") {
		return nil, fmt.Errorf("%w: %s: record has %d columns, the table was opened for %d", ErrRow, where, rec.NumCols(), len(s.names))
	}
	embAt, err := s.emb.rowValues(rec.Column(s.emb.src), where)
	if err != nil {
		return nil, err
	}
	out := make([][]any, n)
	flat := make([]any, n*len(s.names))
	seen := make(map[string]int, n)
	for i := 0; i < n; i++ {
		row := flat[i*len(s.names) : (i+1)*len(s.names) : (i+1)*len(s.names)]
		for j, c := range s.cols {
			var v any
			if c.src < 0 {
				v = b.Keys[i]
			} else if v, err = valueOf(rec.Column(c.src), i); err != nil {
				return nil, fmt.Errorf("%w: %s: row %d: column %q: %v", ErrRow, where, i, c.name, err)
			}
			if c.text && v != nil && strings.IndexByte(v.(string), 0) >= 0 {
				return nil, fmt.Errorf("%w: %s: row %d: column %q holds a NUL byte, which PostgreSQL text cannot store", ErrRow, where, i, c.name)
			}
			row[j] = v
		}
		key := s.keyOf(row)
		if key == "" {
			return nil, fmt.Errorf("%w: %s: row %d: null id (column %s)", ErrRow, where, i, strings.Join(s.key, ", "))
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w: %s: row %d: id %s repeats row %d of the same batch", ErrRow, where, i, key, prev)
		}
		seen[key] = i
		if row[len(s.cols)], err = embAt(i); err != nil {
			return nil, fmt.Errorf("%w: %s: row %d: %v", ErrRow, where, i, err)
		}
		out[i] = row
	}
	return out, nil
}

// keyOf is the printed primary key of a row, or "" when a part is null.
func (s *Sink) keyOf(row []any) string {
	var parts []string
	for _, k := range s.key {
		for j, c := range s.cols {
			if c.name == k {
				if row[j] == nil {
					return ""
				}
				parts = append(parts, fmt.Sprintf("%q", fmt.Sprint(row[j])))
			}
		}
	}
	return strings.Join(parts, "/")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Done returns the chunks of runKey already loaded, with their row counts.
func (s *Sink) Done(ctx context.Context, runKey string) (map[int]int64, error) {
	rows, err := s.conn.Query(ctx, "SELECT seq, rows FROM "+s.progress+" WHERE target = $1 AND run_key = $2", s.o.Table, runKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read progress: %w", ErrWrite, s.o.Table, err)
	}
	defer rows.Close()
	done := map[int]int64{}
	for rows.Next() {
		var seq int
		var n int64
		if err := rows.Scan(&seq, &n); err != nil {
			return nil, err
		}
		done[seq] = n
	}
	return done, rows.Err()
}

// Forget deletes the progress rows of runKey, so that its chunks are
// written again (the rows themselves stay and are overwritten by id).
func (s *Sink) Forget(ctx context.Context, runKey string) error {
	_, err := s.conn.Exec(ctx, "DELETE FROM "+s.progress+" WHERE target = $1 AND run_key = $2", s.o.Table, runKey)
	if err != nil {
		return fmt.Errorf("%w: %s: reset progress: %w", ErrWrite, s.o.Table, err)
	}
	return nil
}

// Report says what Finish did.
type Report struct {
	// Index is the index built ("" when none was asked for), IndexTime how
	// long building it took.
	Index     string
	IndexTime time.Duration
	// Existed is set when the index was there already (built by an
	// earlier run or another finisher), so nothing was built.
	Existed bool
}

// Finish builds the index asked for (if it does not exist yet) and
// analyzes the table. It blocks for as long as the build takes. Finishers
// of the same table (workers of one job, say) take turns under an advisory
// lock, so that the index is built once and the others find it there.
func (s *Sink) Finish(ctx context.Context) (Report, error) {
	var rep Report
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('embedpipe-index:' || $1))", s.o.Table); err != nil {
			return err
		}
		if s.o.Index != IndexNone {
			op, err := s.emb.kind.opClass(s.o.Distance)
			if err != nil {
				return err
			}
			base := s.o.Table
			if i := strings.LastIndexByte(base, '.'); i >= 0 {
				base = base[i+1:]
			}
			name := fmt.Sprintf("%s_%s_%s_idx", base, s.emb.name, s.o.Index)
			if len(name) > 63 {
				name = name[:63]
			}
			qualified := ident(name)
			if i := strings.LastIndexByte(s.o.Table, '.'); i >= 0 {
				qualified = ident(s.o.Table[:i]) + "." + qualified
			}
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", qualified).Scan(&rep.Existed); err != nil {
				return err
			}
			rep.Index = name
			if !rep.Existed {
				if s.o.IndexMemory != "" {
					// For this build only: the server's default (64 MB)
					// makes HNSW builds of large tables spill and slow down.
					if _, err := tx.Exec(ctx, "SELECT set_config('maintenance_work_mem', $1, true)", s.o.IndexMemory); err != nil {
						return fmt.Errorf("%w: index memory %q: %s", ErrOptions, s.o.IndexMemory, describe(err))
					}
				}
				start := time.Now()
				sql := fmt.Sprintf("CREATE INDEX %s ON %s USING %s (%s %s)", ident(name), s.table, s.o.Index, ident(s.emb.name), op)
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("%w: %s: build %s index: %s", ErrWrite, s.o.Table, s.o.Index, describe(err))
				}
				rep.IndexTime = time.Since(start)
			}
		}
		if _, err := tx.Exec(ctx, "ANALYZE "+s.table); err != nil {
			return fmt.Errorf("%w: %s: analyze: %s", ErrWrite, s.o.Table, describe(err))
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrWrite) && !errors.Is(err, ErrOptions) {
		err = fmt.Errorf("%w: %s: finish: %s", ErrWrite, s.o.Table, describe(err))
	}
	return rep, err
}

// Close closes the connection.
func (s *Sink) Close(ctx context.Context) error { return s.conn.Close(ctx) }

// Check validates o's precision, index and distance, connects to o.URL and
// makes sure the vector extension is there (creating it if allowed), so
// that a run can fail before hours of embedding rather than after. It does
// not look at the table, whose shape depends on the records.
func Check(ctx context.Context, o Options) error {
	kind, err := precisionKind(o.Precision)
	if err != nil {
		return err
	}
	if o.Index != IndexNone && o.Index != "" {
		if _, err := kind.opClass(o.Distance); err != nil {
			return err
		}
	}
	if kind == kSparsevec {
		if err := checkSparse(&o); err != nil {
			return err
		}
	}
	s, err := newSink(o)
	if err != nil {
		return err
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	defer s.conn.Close(context.Background())
	return s.ensureExtension(ctx)
}
