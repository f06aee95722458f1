package workers

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pgvector/pgvector-go"
)

// TestStreamToPostgres streams records into a pgvector table, stops part
// way and starts again (redelivered batches are upserted again), and
// republishes some records: every record is in the table once, with its
// embedding and meta.
func TestStreamToPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	texts := corpus(t)[:200]
	emb := tinyBERT(t)
	dim := emb.Dim()
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TEXTS", Subjects: []string{"texts.>"}}); err != nil {
		t.Fatal(err)
	}
	publish := func(i int) {
		body, _ := json.Marshal(schemas.Record{ID: "r" + strconv.Itoa(i), Text: texts[i], Meta: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
		if _, err := js.Publish(ctx, "texts.in", body); err != nil {
			t.Fatal(err)
		}
	}
	for i := range texts {
		publish(i)
	}
	for i := 0; i < 20; i++ { // at-least-once upstream: the same records again
		publish(i)
	}
	w, err := pgsink.NewStreamWriter(ctx, pgsink.Options{URL: url, Table: "live", Index: pgsink.IndexHNSW}, dim)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	cfg := StreamConfig{Encoder: emb, Model: "tiny-bert", From: "TEXTS", To: "postgres", Durable: "to-pg", Batch: 16,
		AckWait: 2 * time.Second, Logger: testLogger(t), Store: w.Store}
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := RunStream(c, js, cfg); err != nil {
		t.Fatal(err)
	}
	cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func() int {
		var n int
		conn.QueryRow(ctx, "SELECT count(*) FROM live").Scan(&n)
		return n
	}
	c, cancel = context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunStream(c, js, cfg) }()
	cons, _ := js.Consumer(ctx, "TEXTS", "to-pg")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err == nil && info.AckFloor.Stream >= uint64(len(texts)+20) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(); n != len(texts) {
		t.Fatalf("%d rows, want %d", n, len(texts))
	}
	want := embedTexts(t, emb, texts)
	rows, err := conn.Query(ctx, "SELECT id, text, (meta->>'i')::int, embedding FROM live")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, text string
		var i int
		var v pgvector.Vector
		if err := rows.Scan(&id, &text, &i, &v); err != nil {
			t.Fatal(err)
		}
		if id != "r"+strconv.Itoa(i) || text != strings.ReplaceAll(texts[i], "\x00", "\uFFFD") {
			t.Fatalf("row %s: text %q, meta i %d", id, text, i)
		}
		closeTo(t, "record "+id, v.Slice(), want[i*dim:(i+1)*dim])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
