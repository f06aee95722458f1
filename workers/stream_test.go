package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStream(t *testing.T) {
	texts := corpus(t)[:300]
	emb := tinyBERT(t)
	dim := emb.Dim()
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	ctx := context.Background()
	for name, subj := range map[string]string{"TEXTS": "texts.>", "VECTORS": "vectors.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Duplicates: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tx := range texts {
		var body []byte
		if i%2 == 0 {
			body, _ = json.Marshal(schemas.Record{ID: "r" + strconv.Itoa(i), Text: tx})
		} else {
			body = []byte(tx) // raw text record; its id is its sequence
		}
		if i == 150 {
			if _, err := js.Publish(ctx, "texts.in", []byte(`{"text": 5}`)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := js.Publish(ctx, "texts.in", body); err != nil {
			t.Fatal(err)
		}
	}
	cfg := StreamConfig{Encoder: emb, Model: "tiny-bert", From: "TEXTS", To: "VECTORS", Batch: 32, AckWait: 2 * time.Second, Logger: testLogger(t)}
	// Run, stop part way, and run again: at-least-once with de-duplication
	// must leave exactly one embedded record per text.
	run := func(d time.Duration) {
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if err := RunStream(c, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	_ = run
	run(300 * time.Millisecond)
	vs, _ := js.Stream(ctx, "VECTORS")
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunStream(c, js, cfg) }()
	var info *jetstream.StreamInfo
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, _ = vs.Info(ctx)
		if info != nil && info.State.Msgs >= uint64(len(texts)) {
			break
		}
	}
	// Give a straggling duplicate the chance to show up before counting.
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, _ = vs.Info(ctx)
	if info.State.Msgs != uint64(len(texts)) {
		t.Fatalf("%d embedded records, want %d", info.State.Msgs, len(texts))
	}
	want := embedTexts(t, emb, texts)
	seen := map[string]bool{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := vs.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var e schemas.Embedded
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			t.Fatalf("record %s embedded twice", e.ID)
		}
		seen[e.ID] = true
		i := -1
		if _, err := fmt.Sscanf(e.ID, "r%d", &i); err != nil {
			// Raw records: id is the source sequence; the malformed
			// record at index 150 shifts the later ones by one.
			src, _ := strconv.Atoi(e.ID)
			i = src - 1
			if i > 150 {
				i--
			}
		}
		closeTo(t, "record "+e.ID, e.Embedding, want[i*dim:(i+1)*dim])
	}
	dlq, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := dlq.GetLastMsgForSubject(ctx, DeadLetterSubjectPrefix+"stream.TEXTS"); err != nil || m.Header.Get(HeaderError) == "" {
		t.Fatalf("malformed record not dead-lettered: %v", err)
	}
}
