package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestServerRunsPgvector(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	url := s.NewDatabase(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var d float64
	if err := c.QueryRow(ctx, "SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector").Scan(&d); err != nil {
		t.Fatal(err)
	}
	if d != 1 {
		t.Fatalf("cosine distance of orthogonal vectors = %v, want 1", d)
	}
	var addr string
	if err := c.QueryRow(ctx, "SELECT host(inet_server_addr())").Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1" {
		t.Fatalf("server address %s, want 127.0.0.1", addr)
	}
	dir := s.Dir
	s.Stop()
	if _, err := pgx.Connect(ctx, url); err == nil {
		t.Fatal("connect after Stop succeeded")
	}
	if _, err := Find(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("server directory %s left behind after Stop (stat: %v)", dir, err)
	}
}
