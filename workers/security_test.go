package workers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

const secret = "s3cr3t-Pa55"

func mustConnect(t *testing.T, o ConnOptions) {
	t.Helper()
	nc, err := Connect(o)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	if _, err := nc.Request("nobody.listens", nil, 50*time.Millisecond); err == nil {
		t.Fatal("a request nobody answers was answered")
	}
}

func mustNotConnect(t *testing.T, o ConnOptions) {
	t.Helper()
	nc, err := Connect(o)
	if err == nil {
		nc.Close()
		t.Fatal("connected with wrong credentials")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
}

func TestConnectAuth(t *testing.T) {
	t.Run("user-password", func(t *testing.T) {
		srv := natstest.Start(t, "", func(o *server.Options) { o.Username, o.Password = "alice", secret })
		mustConnect(t, ConnOptions{URL: srv.URL(), User: "alice", Password: secret})
		mustNotConnect(t, ConnOptions{URL: srv.URL(), User: "alice", Password: secret + "x"})
		mustNotConnect(t, ConnOptions{URL: strings.Replace(srv.URL(), "nats://", "nats://alice:"+secret+"x@", 1)})
	})
	t.Run("token", func(t *testing.T) {
		srv := natstest.Start(t, "", func(o *server.Options) { o.Authorization = secret })
		mustConnect(t, ConnOptions{URL: srv.URL(), Token: secret})
		mustNotConnect(t, ConnOptions{URL: srv.URL(), Token: "nope"})
	})
	t.Run("nkey", func(t *testing.T) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seedFile := filepath.Join(t.TempDir(), "user.nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		srv := natstest.Start(t, "", func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
		mustConnect(t, ConnOptions{URL: srv.URL(), NKeyFile: seedFile})
		other, _ := nkeys.CreateUser()
		otherSeed, _ := other.Seed()
		otherFile := filepath.Join(t.TempDir(), "other.nk")
		_ = os.WriteFile(otherFile, otherSeed, 0o600)
		mustNotConnect(t, ConnOptions{URL: srv.URL(), NKeyFile: otherFile})
	})
	t.Run("mutual-tls", func(t *testing.T) {
		dir := t.TempDir()
		ca, caKey := makeCert(t, dir, "ca", nil, nil)
		makeCert(t, dir, "server", ca, caKey)
		makeCert(t, dir, "client", ca, caKey)
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		serverPair, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		srv := natstest.Start(t, "", func(o *server.Options) {
			o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool,
				ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
			o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
		})
		url := strings.Replace(srv.URL(), "nats://", "tls://", 1)
		mustConnect(t, ConnOptions{URL: url, TLSCA: filepath.Join(dir, "ca.pem"),
			TLSCert: filepath.Join(dir, "client.pem"), TLSKey: filepath.Join(dir, "client-key.pem")})
		mustNotConnect(t, ConnOptions{URL: url, TLSCA: filepath.Join(dir, "ca.pem")})
		if _, err := Connect(ConnOptions{URL: url, TLSCert: filepath.Join(dir, "client.pem")}); err == nil {
			t.Fatal("--tls-cert without --tls-key accepted")
		}
	})
}

// makeCert writes name.pem and name-key.pem into dir: a CA when parent is
// nil, else a certificate for 127.0.0.1 signed by parent.
func makeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "embedpipe-" + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestWorkerLogsNoSecret runs a worker process with a password in a flag
// and in the URL, and a failing one with a wrong password: no line of
// their output may contain a secret.
func TestWorkerLogsNoSecret(t *testing.T) {
	srv := natstest.Start(t, "", func(o *server.Options) { o.Username, o.Password = "alice", secret })
	root := t.TempDir()
	model, _ := filepath.Abs("../testdata/tiny-bert")
	lines := make(chan procLine, 1024)
	withURL := strings.Replace(srv.URL(), "nats://", "nats://alice:"+secret+"@", 1)
	p := startProc(t, "secret-worker", lines, "worker", "--nats", withURL, "--model", model, "--allow-path", root, "--log-level", "debug")
	var all []string
	deadline := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case l := <-lines:
			all = append(all, l.line)
			ready = strings.Contains(l.line, "worker started")
		case <-deadline:
			t.Fatalf("worker did not start: %q", all)
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	_ = p.cmd.Wait()
	for len(lines) > 0 {
		all = append(all, (<-lines).line)
	}
	out, err := runBin(t, "worker", "--nats", srv.URL(), "--user", "alice", "--password", secret+"-wrong", "--model", model, "--allow-path", root)
	if err == nil {
		t.Fatal("worker with a wrong password did not fail")
	}
	all = append(all, out)
	for _, l := range all {
		if strings.Contains(l, secret) {
			t.Fatalf("a secret reached the output: %s", l)
		}
	}
	if !strings.Contains(strings.Join(all, "\n"), "alice:xxxxx@") {
		t.Fatalf("the redacted URL is not logged: %q", all)
	}
}
