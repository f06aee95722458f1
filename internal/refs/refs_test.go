package refs

import "testing"

func TestReadModelRefs(t *testing.T) {
	rows := Read[Row](t, "tiny-bert-bf16-cls.parquet")
	if len(rows) != 2092 {
		t.Fatalf("got %d rows, want 2092", len(rows))
	}
	r := rows[3]
	if r.Text == nil || *r.Text != "Hello, world!" {
		t.Fatalf("row 3 text = %v", r.Text)
	}
	if len(r.InputIDs) < 3 || r.InputIDs[0] != 101 || len(r.Embedding) != 48 || len(r.EmbeddingQuery) != 48 {
		t.Fatalf("row 3 = ids %v, %d dims, %d query dims", r.InputIDs, len(r.Embedding), len(r.EmbeddingQuery))
	}
	tr := Read[TokenRow](t, "tiny-bert.token_embeddings.parquet")
	if len(tr) != 48 || int(tr[3].NTokens)*32 != len(tr[3].Values) {
		t.Fatalf("token rows: %d, row 3 n_tokens %d values %d", len(tr), tr[3].NTokens, len(tr[3].Values))
	}
	kr := Read[TokenizerRow](t, "tokenizer.bert-base-uncased.parquet")
	if len(kr) != 2092 || kr[3].Tokens == "" || kr[3].Offsets == "" {
		t.Fatalf("tokenizer rows: %d, row 3 %+v", len(kr), kr[3])
	}
}
