// Package pgtest starts throwaway PostgreSQL servers with the pgvector
// extension for tests and benchmarks.
//
// A server lives in a temporary directory, listens on 127.0.0.1 at a free
// port, trusts local connections and is stopped (and its directory removed)
// when the test ends; the postgres process also dies with the test binary,
// so a killed test leaves nothing running. When the PostgreSQL binaries or
// the pgvector extension are missing, the test is skipped with a message
// naming what is missing and how to install it (.ci/run and
// ../shared/services/pgvector.sh show how).
//
// Binaries are found through $EMBEDPIPE_PG_BINDIR, then pg_config on $PATH,
// then the newest /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as
// root, so a root test runs the server as the user postgres (or nobody).
package pgtest
