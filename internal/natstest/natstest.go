package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an in-process nats-server with JetStream on a file store. It is
// shut down when the test ends.
type Server struct {
	tb   testing.TB
	opts server.Options
	srv  *server.Server
}

// Options adjust the server before it starts (authorization, limits).
type Options func(*server.Options)

// Start starts a server with its store in storeDir (a fresh t.TempDir()
// when empty) on a random loopback port.
func Start(tb testing.TB, storeDir string, opts ...Options) *Server {
	tb.Helper()
	if storeDir == "" {
		storeDir = tb.TempDir()
	}
	o := server.Options{
		Host:      "127.0.0.1",
		Port:      freePort(tb),
		JetStream: true,
		StoreDir:  storeDir,
		NoSigs:    true,
		NoLog:     true,
		// Keep the JetStream memory and disk limits small enough for
		// CI machines; the store is a test directory.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
	}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{tb: tb, opts: o}
	s.start()
	tb.Cleanup(s.Shutdown)
	return s
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() {
	s.tb.Helper()
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		s.tb.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.tb.Fatalf("natstest: server on port %d not ready", o.Port)
	}
	s.srv = srv
}

// URL returns the client URL of the server.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// Port returns the server's port, which stays the same across Restart.
func (s *Server) Port() int { return s.opts.Port }

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Server returns the running server.
func (s *Server) Server() *server.Server { return s.srv }

// Shutdown stops the server and waits until it is down. It is safe to call
// more than once.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart shuts the server down, waits down for the given time, and starts
// it again on the same port with the same store: streams, consumers and
// buckets survive, connected clients reconnect.
func (s *Server) Restart(down time.Duration) {
	s.tb.Helper()
	s.Shutdown()
	time.Sleep(down)
	s.start()
}

// StartCluster starts n servers on loopback that form a JetStream cluster
// named "embedpipe", each with its own store, and waits until JetStream has
// a meta leader. The servers are shut down when the test ends.
func StartCluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	cports := make([]int, n)
	routes := ""
	for i := range n {
		cports[i] = freePort(tb)
		if i > 0 {
			routes += ","
		}
		routes += "nats://127.0.0.1:" + strconv.Itoa(cports[i])
	}
	var out []*Server
	for i := range n {
		out = append(out, Start(tb, "", func(o *server.Options) {
			o.ServerName = "n" + strconv.Itoa(i+1)
			o.Cluster = server.ClusterOpts{Name: "embedpipe", Host: "127.0.0.1", Port: cports[i]}
			o.Routes = server.RoutesFromStr(routes)
		}))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader := false
		for _, s := range out {
			if s.srv != nil && s.srv.JetStreamIsLeader() {
				leader = true
			}
		}
		if leader {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("natstest: the cluster elected no JetStream meta leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out
}

// ClusterURL returns the comma-separated client URLs of servers.
func ClusterURL(servers []*Server) string {
	u := ""
	for i, s := range servers {
		if i > 0 {
			u += ","
		}
		u += s.URL()
	}
	return u
}
