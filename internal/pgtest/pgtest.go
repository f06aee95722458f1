package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is one running PostgreSQL server.
type Server struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Dir is the data directory.
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	stop   sync.Once
}

// ErrUnavailable is wrapped by Find's error when PostgreSQL or pgvector is
// not installed.
var ErrUnavailable = errors.New("pgtest: PostgreSQL with pgvector is not installed")

const installHint = "install postgresql-15 and build pgvector as .ci/run does (../shared/services/pgvector.sh install)"

// Find returns the directory of the PostgreSQL server binaries, or an error
// wrapping ErrUnavailable that says what is missing.
func Find() (string, error) {
	var dirs []string
	if d := os.Getenv("EMBEDPIPE_PG_BINDIR"); d != "" {
		dirs = append(dirs, d)
	}
	if pc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pc, "--bindir").Output(); err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) > versionOf(found[j]) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if !isExec(filepath.Join(d, "postgres")) || !isExec(filepath.Join(d, "initdb")) {
			continue
		}
		out, err := exec.Command(filepath.Join(d, "pg_config"), "--sharedir").Output()
		if err != nil {
			return "", fmt.Errorf("%w: %s/pg_config --sharedir: %v (%s)", ErrUnavailable, d, err, installHint)
		}
		ctl := filepath.Join(strings.TrimSpace(string(out)), "extension", "vector.control")
		if _, err := os.Stat(ctl); err != nil {
			return "", fmt.Errorf("%w: PostgreSQL in %s has no pgvector extension (%s missing); %s", ErrUnavailable, d, ctl, installHint)
		}
		return d, nil
	}
	return "", fmt.Errorf("%w: no postgres/initdb binaries found (EMBEDPIPE_PG_BINDIR, pg_config on PATH, /usr/lib/postgresql/*/bin); %s", ErrUnavailable, installHint)
}

func versionOf(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Start starts a fresh server for t and stops it when t ends. It skips t
// when PostgreSQL or pgvector is not installed, and fails it when the
// server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Find()
	if err != nil {
		t.Skip(err.Error())
	}
	s, err := StartServer(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer initializes a data directory in a new temporary directory and
// starts postgres from bin on a free port of 127.0.0.1. The caller must call
// Stop.
func StartServer(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "embedpipe-pgtest-")
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, dir, data, port, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func launch(bin, dir, data string, port int, cred *syscall.Credential) (*Server, error) {
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cred != nil {
		logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	// fsync stays on: crash tests kill clients, and a server that lies about
	// durability would hide nothing there, but benchmarks should pay for it.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "max_connections=100", "-c", "shared_buffers=128MB", "-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s := &Server{Port: port, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return s, nil
		}
		cancel()
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("pgtest: postgres exited on port %d: %s", port, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("pgtest: postgres on port %d did not accept connections within 60s: %w", port, err)
		}
	}
}

// credential is the user the server runs as: nil (the current user) unless
// the test runs as root, which PostgreSQL refuses.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root and neither user postgres nor nobody exists to run the server")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the connection URL of database db as the superuser postgres.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

var dbSeq atomic.Int64

// NewDatabase creates a fresh database with the vector extension and
// returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	url, err := s.CreateDatabase(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// CreateDatabase creates a fresh database, with the vector extension when
// withVector is set, and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, withVector bool) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	url := s.URL(name)
	if withVector {
		d, err := pgx.Connect(ctx, url)
		if err != nil {
			return "", fmt.Errorf("pgtest: %w", err)
		}
		defer d.Close(ctx)
		if _, err := d.Exec(ctx, "CREATE EXTENSION vector"); err != nil {
			return "", fmt.Errorf("pgtest: create extension vector in %s: %w", name, err)
		}
	}
	return url, nil
}

// Exec runs sql as the superuser in database db.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast mode, then SIGKILL after 30 s) and
// removes its directory. It is safe to call more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.kill()
		}
		os.RemoveAll(s.Dir)
	})
}

func (s *Server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}
