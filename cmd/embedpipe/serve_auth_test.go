package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TestServeRefusesOpenListen checks that serve refuses, before it loads the
// model or listens, an embedded server on a non-loopback address without
// credentials it can enforce.
func TestServeRefusesOpenListen(t *testing.T) {
	dir := t.TempDir()
	for _, extra := range [][]string{nil, {"--creds", "x.creds"}, {"--tls-cert", "c.pem", "--tls-key", "k.pem"}, {"--user", "u"}} {
		args := append([]string{"serve", "--model", "no-such-model", "--store", dir, "--listen", "0.0.0.0:0"}, extra...)
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !(strings.Contains(errOut, "--insecure-no-auth") || strings.Contains(errOut, "without --password")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a refusal naming --insecure-no-auth", extra, code, errOut)
		}
	}
}

func TestEmbeddedServerAuth(t *testing.T) {
	if _, open, err := embeddedServerAuth(&workers.ConnOptions{}, "127.0.0.1:4222", false); err != nil || open {
		t.Errorf("loopback without auth: open %v, err %v", open, err)
	}
	if _, open, err := embeddedServerAuth(&workers.ConnOptions{}, "[::1]:4222", false); err != nil || open {
		t.Errorf("IPv6 loopback without auth: open %v, err %v", open, err)
	}
	if _, _, err := embeddedServerAuth(&workers.ConnOptions{}, "0.0.0.0:4222", false); err == nil {
		t.Error("0.0.0.0 without auth accepted")
	}
	if _, _, err := embeddedServerAuth(&workers.ConnOptions{}, "myhost:4222", false); err == nil {
		t.Error("a host name without auth accepted")
	}
	if _, open, err := embeddedServerAuth(&workers.ConnOptions{}, "0.0.0.0:4222", true); err != nil || !open {
		t.Errorf("--insecure-no-auth: open %v, err %v", open, err)
	}
	apply, open, err := embeddedServerAuth(&workers.ConnOptions{Token: "s3cret"}, "0.0.0.0:4222", false)
	if err != nil || open {
		t.Fatalf("token: open %v, err %v", open, err)
	}
	var o server.Options
	apply(&o)
	if o.Authorization != "s3cret" {
		t.Errorf("token not applied: %+v", o)
	}
}

// TestEmbeddedServerNkey starts an embedded server configured from --nkey
// as serve does: a client without the seed is refused, one with it admitted.
func TestEmbeddedServerNkey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	conn := workers.ConnOptions{NKeyFile: seedFile}
	apply, open, err := embeddedServerAuth(&conn, "0.0.0.0:4222", false)
	if err != nil || open {
		t.Fatalf("nkey: open %v, err %v", open, err)
	}
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	apply(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	if nc, err := workers.Connect(workers.ConnOptions{URL: srv.ClientURL()}); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was admitted")
	}
	conn.URL = srv.ClientURL()
	nc, err := workers.Connect(conn)
	if err != nil {
		t.Fatalf("a client with the nkey seed was refused: %v", err)
	}
	nc.Close()
}
