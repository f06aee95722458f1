package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// chunkRow is one output row of a chunked run, read back.
type chunkRow struct {
	text       *string
	index      int32
	start, end int64
	hasOffsets bool
	chunkText  *string
	embedding  []float32
}

// readChunkRows reads the text, chunk and embedding columns of a chunked
// output, checking the chunk columns' types.
func readChunkRows(t *testing.T, path string) []chunkRow {
	t.Helper()
	if strings.HasSuffix(path, ".jsonl") {
		return readChunkJSONL(t, path)
	}
	tbl := readOutput(t, path)
	defer tbl.Release()
	sc := tbl.Schema()
	want := map[string]arrow.Type{ChunkIndexColumn: arrow.INT32, ChunkStartColumn: arrow.INT32, ChunkEndColumn: arrow.INT32, ChunkTextColumn: arrow.STRING}
	for name, typ := range want {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 || sc.Field(idx[0]).Type.ID() != typ {
			t.Fatalf("%s: column %q: %v, want one of type %s (schema %s)", path, name, idx, typ, sc)
		}
	}
	if got := sc.Field(sc.NumFields() - 1).Name; got != "embedding" {
		t.Fatalf("%s: last column %q, want the embedding", path, got)
	}
	embs, _ := embeddings(t, tbl, "embedding")
	col := func(name string) arrow.Array {
		c, err := array.Concatenate(tbl.Column(sc.FieldIndices(name)[0]).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	texts, _ := fileio.NewTextColumn(col("text"))
	ctexts, _ := fileio.NewTextColumn(col(ChunkTextColumn))
	idx, st, en := col(ChunkIndexColumn).(*array.Int32), col(ChunkStartColumn).(*array.Int32), col(ChunkEndColumn).(*array.Int32)
	rows := make([]chunkRow, tbl.NumRows())
	for i := range rows {
		r := &rows[i]
		if s, ok := texts.Value(i); ok {
			r.text = &s
		}
		if s, ok := ctexts.Value(i); ok {
			r.chunkText = &s
		}
		r.index = idx.Value(i)
		if st.IsValid(i) && en.IsValid(i) {
			r.hasOffsets, r.start, r.end = true, int64(st.Value(i)), int64(en.Value(i))
		}
		r.embedding = embs[i]
	}
	return rows
}

// readChunkJSONL reads a chunked JSONL output line by line: the chunk
// index and offsets must be JSON integers (or null offsets), the texts
// strings, the embedding an array of numbers.
func readChunkJSONL(t *testing.T, path string) []chunkRow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []chunkRow
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var v struct {
			Text      *string   `json:"text"`
			Index     *int32    `json:"chunk_index"`
			Start     *int64    `json:"chunk_start"`
			End       *int64    `json:"chunk_end"`
			ChunkText *string   `json:"chunk_text"`
			Embedding []float32 `json:"embedding"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || v.Index == nil {
			t.Fatalf("%s line %d: %v (chunk_index %v): %.200s", path, i+1, err, v.Index, line)
		}
		r := chunkRow{text: v.Text, index: *v.Index, chunkText: v.ChunkText, embedding: v.Embedding}
		if v.Start != nil && v.End != nil {
			r.hasOffsets, r.start, r.end = true, *v.Start, *v.End
		}
		rows = append(rows, r)
	}
	return rows
}

// groupChunks splits the output rows by input row: chunk_index 0 starts a
// row's chunks.
func groupChunks(t *testing.T, rows []chunkRow) [][]chunkRow {
	t.Helper()
	var out [][]chunkRow
	for i, r := range rows {
		if r.index == 0 {
			out = append(out, nil)
		} else if len(out) == 0 || int(r.index) != len(out[len(out)-1]) {
			t.Fatalf("output row %d: chunk_index %d out of order", i, r.index)
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	return out
}

// checkChunks asserts the chunking rules on one input row's chunks against
// the model's own tokens of the text, computed here: offsets that map back
// to the text, at most n tokens a chunk, boundaries at word starts (a
// word is split only when it alone is longer than the room left),
// consecutive chunks sharing exactly m tokens (or, where the text allows no
// such boundary, the test checks that none exists), and every token
// covered. It returns the token ranges.
func checkChunks(t *testing.T, m *encoder.Model, row int, text string, cs []chunkRow, n, ov int) [][2]int {
	t.Helper()
	_, offs, word, err := m.TextTokens(text)
	if err != nil {
		t.Fatalf("row %d: %v", row, err)
	}
	if len(offs) == 0 {
		if len(cs) != 1 || cs[0].start != 0 || cs[0].end != int64(len(text)) {
			t.Fatalf("row %d %q has no tokens: chunks %+v, want one over the text", row, text, cs)
		}
		return nil
	}
	tokAt := map[int64]int{}  // token starting at a byte
	tokEnd := map[int64]int{} // token ending at a byte (the last one there)
	for i, o := range offs {
		if _, ok := tokAt[int64(o.Start)]; !ok {
			tokAt[int64(o.Start)] = i
		}
		tokEnd[int64(o.Stop)] = i + 1
	}
	var spans [][2]int
	for k, c := range cs {
		if !c.hasOffsets || c.chunkText == nil || c.start < 0 || c.end > int64(len(text)) || c.start >= c.end || *c.chunkText != text[c.start:c.end] {
			t.Fatalf("row %d chunk %d: [%d, %d) %v does not map back to the text", row, k, c.start, c.end, c.chunkText)
		}
		lo, ok1 := tokAt[c.start]
		hi, ok2 := tokEnd[c.end]
		if !ok1 || !ok2 {
			t.Fatalf("row %d chunk %d: [%d, %d) is not at token boundaries", row, k, c.start, c.end)
		}
		if hi-lo > n || hi <= lo {
			t.Fatalf("row %d chunk %d: %d tokens, want 1 to %d", row, k, hi-lo, n)
		}
		spans = append(spans, [2]int{lo, hi})
	}
	if spans[0][0] != 0 || spans[len(spans)-1][1] != len(offs) {
		t.Fatalf("row %d: chunks cover tokens %d to %d of %d", row, spans[0][0], spans[len(spans)-1][1], len(offs))
	}
	ws := func(j int) bool { return j >= len(word) || word[j] }
	for k := 1; k < len(spans); k++ {
		prev, cur := spans[k-1], spans[k]
		if cur[0] <= prev[0] || cur[0] > prev[1] {
			t.Fatalf("row %d chunk %d: tokens %v after %v leave a gap or go back", row, k, cur, prev)
		}
		// A boundary inside a word only where that word alone fills the
		// chunk: no word starts in (lo, lo+n].
		for _, b := range []int{prev[1], cur[0]} {
			if !ws(b) {
				for j := prev[0] + 1; j <= prev[0]+n && j < len(word); j++ {
					if word[j] {
						t.Fatalf("row %d chunk %d: boundary at token %d inside a word, though token %d starts one", row, k, b, j)
					}
				}
			}
		}
		if shared := prev[1] - cur[0]; shared != ov {
			// Only where no end in (lo+ov, lo+n] has word starts at it and
			// ov tokens before it.
			for j := prev[0] + ov + 1; j <= prev[0]+n && j < len(word); j++ {
				if word[j] && word[j-ov] {
					t.Fatalf("row %d chunk %d: %d shared tokens, want %d (token %d would do)", row, k, shared, ov, j)
				}
			}
		}
	}
	return spans
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

// TestChunkSplit chunks the whole public corpus with tiny-bert (WordPiece)
// into Parquet, Arrow and JSONL, and with tiny-modernbert (byte-level BPE)
// into Parquet, and checks every chunk: the rules of checkChunks,
// and its embedding equal to embedding its chunk_text alone through the
// embedding seam (cosine ≥ 0.999999); the summary counts input rows in
// and out and the chunks.
func TestChunkSplit(t *testing.T) {
	for _, c := range []struct {
		model string
		exts  []string
	}{{"tiny-bert", []string{"parquet", "arrow", "jsonl"}}, {"tiny-modernbert", []string{"parquet"}}} {
		t.Run(c.model, func(t *testing.T) { testChunkSplit(t, c.model, c.exts) })
	}
}

func testChunkSplit(t *testing.T, model string, exts []string) {
	m, err := encoder.Load(refs.ModelDir(t, model), encoder.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	const n, ov = 24, 6
	in := corpusPath(t)
	var texts []*string
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ Text *string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, r.Text)
	}
	f.Close()
	dir := t.TempDir()
	e, err := embed.New(m, embed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := e.TokenizeTo(nil, "")
	for _, ext := range exts {
		out := filepath.Join(dir, "chunks."+ext)
		sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, ChunkTokens: n, ChunkOverlap: ov, ChunkRows: 300, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		rows := readChunkRows(t, out)
		groups := groupChunks(t, rows)
		if len(groups) != len(texts) || sum.RowsIn != int64(len(texts)) || sum.RowsOut != sum.RowsIn || sum.ChunksOut != int64(len(rows)) {
			t.Fatalf("%s: %d rows in %d groups of chunks for %d texts; summary in %d out %d chunks %d", ext, len(rows), len(groups), len(texts), sum.RowsIn, sum.RowsOut, sum.ChunksOut)
		}
		var chunkTexts []string
		var vecs [][]float32
		multi := 0
		for i, g := range groups {
			if g[0].text == nil || texts[i] == nil || *g[0].text != *texts[i] {
				t.Fatalf("%s: group %d is not input row %d", ext, i, i)
			}
			checkChunks(t, m, i, *texts[i], g, n, ov)
			if len(g) > 1 {
				multi++
			}
			for _, c := range g {
				if ids, _ := e.TokenizeTo(nil, *c.chunkText); len(ids) > n+len(empty) {
					t.Fatalf("row %d chunk %d: %d tokens alone, more than %d and the special tokens", i, c.index, len(ids), n)
				}
				chunkTexts = append(chunkTexts, *c.chunkText)
				vecs = append(vecs, c.embedding)
			}
		}
		alone := make([]float32, len(chunkTexts)*e.Dim())
		if _, err := e.Embed(context.Background(), alone, chunkTexts); err != nil {
			t.Fatal(err)
		}
		worst := 1.0
		for k, v := range vecs {
			if v == nil {
				t.Fatalf("%s: chunk %d has a null embedding", ext, k)
			}
			worst = math.Min(worst, cosine(v, alone[k*e.Dim():(k+1)*e.Dim()]))
		}
		if worst < 0.999999 {
			t.Fatalf("%s: a chunk's embedding differs from its text's: cosine %.9f", ext, worst)
		}
		if multi < 50 {
			t.Fatalf("%s: only %d texts were cut into several chunks", ext, multi)
		}
		t.Logf("%s: %d rows → %d chunks (%d texts in several), min cosine to chunk_text alone %.9f", ext, len(texts), len(rows), multi, worst)
	}
}

// TestChunkConfig checks the chunking options: defaults, and a clear error
// for each bad combination.
func TestChunkConfig(t *testing.T) {
	m, err := encoder.Load(refs.ModelDir(t, "tiny-bert"), encoder.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Config{ChunkTokens: 100}.WithDefaults(m)
	if err != nil || c.ChunkMode != ChunkSplit || c.ChunkOverlap != 0 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for _, bad := range []struct {
		c    Config
		want string
	}{
		{Config{ChunkTokens: 127}, "at most 126"},
		{Config{ChunkTokens: 125, Prompt: "query: "}, "at most 124"},
		{Config{ChunkTokens: 10, ChunkOverlap: 10}, "less than the chunk tokens"},
		{Config{ChunkTokens: 10, ChunkOverlap: -1}, "at least 0"},
		{Config{ChunkOverlap: 2}, "needs chunk tokens"},
		{Config{ChunkMode: ChunkLate}, "needs chunk tokens"},
		{Config{ChunkTokens: 10, ChunkMode: "sideways"}, "chunk mode"},
		{Config{ChunkTokens: -3}, "positive"},
		{Config{ChunkTokens: 10, OutputValue: TokenEmbeddings}, "sentence embeddings"},
	} {
		_, err := bad.c.WithDefaults(m)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want ErrConfig saying %q", bad.c, err, bad.want)
		}
	}
	// A tokenizer without offsets (Unigram) is refused with the reason.
	x, err := encoder.Load(refs.ModelDir(t, "tiny-xlmr"), encoder.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Config{ChunkTokens: 10}).WithDefaults(x); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Unigram") {
		t.Errorf("tiny-xlmr: %v, want ErrConfig naming the Unigram tokenizer", err)
	}
}

// TestChunkSpans checks the chunker on word-start patterns that bend its
// rules: exact overlap at word starts when the text allows it, the nearest
// word start otherwise, and a word longer than a chunk split inside.
func TestChunkSpans(t *testing.T) {
	// 'w' starts a word, '.' continues one, ',' continues a character.
	words := func(s string) ([]bool, []bool) {
		b, c := make([]bool, len(s)), make([]bool, len(s))
		for i := range s {
			b[i], c[i] = s[i] == 'w', s[i] != ','
		}
		return b, c
	}
	for _, c := range []struct {
		words string
		n, m  int
		want  [][2]int
	}{
		{"wwwwwwwwww", 4, 1, [][2]int{{0, 4}, {3, 7}, {6, 10}}},
		{"wwwwwwwwww", 4, 0, [][2]int{{0, 4}, {4, 8}, {8, 10}}},
		{"w.w.w.w.w.", 4, 0, [][2]int{{0, 4}, {4, 8}, {8, 10}}},
		{"w..w..w..w", 4, 0, [][2]int{{0, 3}, {3, 6}, {6, 10}}},
		// Exact overlap of 2 needs word starts at j and j-2: j=4 (2 and 4).
		{"w.w.w.w.", 5, 2, [][2]int{{0, 4}, {2, 6}, {4, 8}}},
		// No end in (lo+1, lo+4] with a word start 1 before: end at the
		// last word start (3), start the next at the nearest one back (0
		// is lo, so 3: no overlap).
		{"w..w..w...", 4, 1, [][2]int{{0, 3}, {3, 6}, {6, 10}}},
		// A word of 7 tokens in chunks of 3 is split inside, until the next
		// word start ends a chunk (whose successor then starts there).
		{"w......w", 3, 1, [][2]int{{0, 3}, {2, 5}, {4, 7}, {7, 8}}},
		// Inside a word, not inside a character: 3 tokens of a character.
		{"w.,,.,,.", 3, 1, [][2]int{{0, 1}, {1, 4}, {4, 7}, {7, 8}}},
		{"", 3, 1, nil},
		{"w", 3, 1, [][2]int{{0, 1}}},
	} {
		w, cut := words(c.words)
		got := chunkSpans(w, cut, c.n, c.m)
		if len(got) != len(c.want) {
			t.Errorf("%q n=%d m=%d: %v, want %v", c.words, c.n, c.m, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q n=%d m=%d: %v, want %v", c.words, c.n, c.m, got, c.want)
				break
			}
		}
	}
}

// TestChunkRowPolicy checks that a chunked run accounts for every input
// row: a row that cannot be embedded fails the run naming it, or has all
// its chunks skipped, or written with null embeddings; a null text gives
// one row of nulls at chunk_index 0; the errors file lists input rows.
func TestChunkRowPolicy(t *testing.T) {
	m := noSpecialsModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	long := "the river bank was muddy and the fish were biting all day long"
	writeTexts(t, in, arrow.BinaryTypes.String, []*string{sp(long), sp(""), nil, sp("b c d"), sp("")}, 100)
	out := filepath.Join(dir, "out.parquet")
	cfg := Config{Inputs: []Input{{Path: in}}, Output: out, ChunkTokens: 4, ChunkOverlap: 1}
	if _, err := Run(context.Background(), m, cfg); !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "row 1") {
		t.Fatalf("on-error fail: %v", err)
	}
	_, offs, word, err := m.TextTokens(long)
	if err != nil {
		t.Fatal(err)
	}
	longChunks := len(chunkSpans(word, cuts(offs), 4, 1))
	if longChunks < 3 || len(offs) < 10 {
		t.Fatalf("%d tokens in %d chunks", len(offs), longChunks)
	}
	errsPath := filepath.Join(dir, "errors.jsonl")
	c := cfg
	c.OnError, c.ErrorsPath = OnErrorSkip, errsPath
	sum, err := Run(context.Background(), m, c)
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsIn != 5 || sum.RowsOut != 3 || sum.Skipped != 2 || sum.Nulls != 1 || sum.ChunksOut != int64(longChunks+2) {
		t.Fatalf("skip summary %+v, want 5 in, 3 out, 2 skipped, %d chunks", sum, longChunks+2)
	}
	lines, _ := os.ReadFile(errsPath)
	if n := strings.Count(string(lines), "\n"); n != 2 || !strings.Contains(string(lines), `"row":1`) || !strings.Contains(string(lines), `"row":4`) {
		t.Fatalf("errors file:\n%s", lines)
	}
	rows := readChunkRows(t, out)
	if len(rows) != longChunks+2 || rows[longChunks].text != nil || rows[longChunks].index != 0 || rows[longChunks].hasOffsets || rows[longChunks].embedding != nil {
		t.Fatalf("skip: %d rows; the null text's row %+v", len(rows), rows[min(longChunks, len(rows)-1)])
	}
	checkChunks(t, m, 0, long, rows[:longChunks], 4, 1)

	c.OnError = OnErrorNull
	if sum, err = Run(context.Background(), m, c); err != nil {
		t.Fatal(err)
	}
	if sum.RowsOut != 5 || sum.Errors != 2 || sum.ChunksOut != int64(longChunks+4) {
		t.Fatalf("null summary %+v", sum)
	}
	rows = readChunkRows(t, out)
	for _, k := range []int{longChunks, longChunks + 3} { // the empty texts: one chunk each, no vector
		if r := rows[k]; r.index != 0 || !r.hasOffsets || r.start != 0 || r.end != 0 || r.chunkText == nil || *r.chunkText != "" || r.embedding != nil {
			t.Fatalf("null: row %d %+v", k, r)
		}
	}
	if rows[0].embedding == nil || rows[longChunks+2].embedding == nil {
		t.Fatal("null: a good row lost its embedding")
	}
}

// TestChunkResume interrupts a chunked run and resumes it: the output is
// identical to an uninterrupted run's and the summary counts the same
// input rows and chunks.
func TestChunkResume(t *testing.T) {
	m, err := encoder.Load(refs.ModelDir(t, "tiny-bert"), encoder.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 600, 100)
	cfg := Config{Inputs: []Input{{Path: in}}, ChunkTokens: 20, ChunkOverlap: 5, ChunkRows: 100, Workers: 1}
	clean := cfg
	clean.Output = filepath.Join(dir, "clean.parquet")
	want, err := Run(context.Background(), m, clean)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.parquet")
	ctx, cancel := context.WithCancel(context.Background())
	c := cfg
	c.Output, c.Resume, c.ProgressEvery = out, true, time.Millisecond
	c.Progress = func(s Summary) {
		if s.RowsIn > 0 {
			cancel()
		}
	}
	_, err = Run(ctx, m, c)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	c.Progress = nil
	got, err := Run(context.Background(), m, c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Resumed == 0 || got.RowsIn != want.RowsIn || got.RowsOut != want.RowsOut || got.ChunksOut != want.ChunksOut || want.ChunksOut <= want.RowsIn {
		t.Fatalf("resumed summary in %d out %d chunks %d resumed %d; clean in %d out %d chunks %d", got.RowsIn, got.RowsOut, got.ChunksOut, got.Resumed, want.RowsIn, want.RowsOut, want.ChunksOut)
	}
	sameOutput(t, out, clean.Output)
}

// TestChunkLate runs late chunking on ModernBERT (mean pooling) and Qwen3
// (last-token pooling), both byte-level BPE, over the corpus texts that
// fit their max length, and checks every chunk's vector against its span
// pooled here from the whole document's token embeddings
// (Embedder.TokenEmbeddingsTo, one sequence, the template located by its
// ids) and normalized: cosine ≥ 0.999999, max abs diff ≤ 2e-5. The chunks
// obey the rules of checkChunks. A document longer than the max length is
// a row error that says why.
func TestChunkLate(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ model, pooling string }{{"tiny-modernbert", "mean"}, {"tiny-qwen3", "lasttoken"}} {
		t.Run(c.model, func(t *testing.T) {
			m, err := encoder.Load(refs.ModelDir(t, c.model), encoder.WithThreads(1))
			if err != nil {
				t.Fatal(err)
			}
			e, err := embed.New(m, embed.Options{Output: TokenEmbeddings})
			if err != nil {
				t.Fatal(err)
			}
			const n, ov = 16, 4
			var texts, tooLong []*string
			for _, s := range corpusTexts(t) {
				ids, trunc := e.TokenizeTo(nil, s)
				if trunc {
					if len(tooLong) == 0 {
						tooLong = append(tooLong, sp(s))
					}
					continue
				}
				if len(ids) > 0 && len(texts) < 400 {
					texts = append(texts, sp(s))
				}
			}
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			writeJSONL(t, in, texts)
			out := filepath.Join(dir, "out.parquet")
			sum, err := Run(ctx, m, Config{Inputs: []Input{{Path: in}}, Output: out, ChunkTokens: n, ChunkOverlap: ov, ChunkMode: ChunkLate, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			rows := readChunkRows(t, out)
			groups := groupChunks(t, rows)
			if len(groups) != len(texts) || sum.ChunksOut != int64(len(rows)) || sum.RowsOut != int64(len(texts)) {
				t.Fatalf("%d groups of %d rows for %d texts; summary %+v", len(groups), len(rows), len(texts), sum)
			}
			h := m.Hidden()
			worst, maxd, multi := 1.0, 0.0, 0
			for i, g := range groups {
				text := *texts[i]
				spans := checkChunks(t, m, i, text, g, n, ov)
				if len(g) > 1 {
					multi++
				}
				tids, _, _, err := m.TextTokens(text)
				if err != nil {
					t.Fatal(err)
				}
				var b encoder.Batch
				b.Reset()
				ids, _ := e.TokenizeTo(nil, text)
				b.Add(ids)
				base := -1
				for p := 0; p+len(tids) <= len(ids); p++ {
					if slices.Equal(ids[p:p+len(tids)], tids) {
						base = p
						break
					}
				}
				if base < 0 {
					t.Fatalf("row %d: the text's tokens are not in its sequence", i)
				}
				tok := make([]float32, len(ids)*h)
				if err := e.TokenEmbeddingsTo(ctx, tok, &b); err != nil {
					t.Fatal(err)
				}
				if spans == nil { // a text without tokens: the whole sequence
					spans = [][2]int{{-base, len(ids) - base}}
				}
				for k, s := range spans {
					lo, hi := base+s[0], base+s[1]
					want := make([]float32, h)
					if c.pooling == "lasttoken" {
						copy(want, tok[(hi-1)*h:hi*h])
					} else {
						for j := range want {
							var acc float64
							for p := lo; p < hi; p++ {
								acc += float64(tok[p*h+j])
							}
							want[j] = float32(acc / float64(hi-lo))
						}
					}
					encoder.Normalize(want)
					got := g[k].embedding
					worst = math.Min(worst, cosine(got, want))
					for j := range want {
						maxd = math.Max(maxd, math.Abs(float64(got[j]-want[j])))
					}
				}
			}
			if worst < 0.999999 || maxd > 2e-5 || multi < 20 {
				t.Fatalf("late chunks vs pooled token embeddings: min cosine %.9f, max abs diff %.2g (%d texts in several chunks)", worst, maxd, multi)
			}
			t.Logf("%d texts → %d chunks (%d in several): min cosine %.9f, max abs diff %.2g", len(texts), len(rows), multi, worst, maxd)
			// A document that does not fit is a row error naming it.
			writeJSONL(t, in, append([]*string{sp("short")}, tooLong...))
			_, err = Run(ctx, m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "long.parquet"), ChunkTokens: n, ChunkMode: ChunkLate})
			if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "row 1") || !strings.Contains(err.Error(), "late chunking encodes the whole document") {
				t.Fatalf("too long a document: %v", err)
			}
		})
	}
}
