#!/usr/bin/env bash
# install-pgvector.sh: installs what the PostgreSQL tests need on Debian 12:
# postgresql-15 and postgresql-server-dev-15 from apt, and pgvector built from
# the release tarball in ../shared/vendor (Debian 12 does not package it).
# Idempotent: does nothing when postgres, the server headers and the vector
# extension are already there. Developers run it once; .ci/run runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."
PGBIN=/usr/lib/postgresql/15/bin
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if [ ! -x "$PGBIN/postgres" ] || [ ! -f /usr/include/postgresql/15/server/postgres.h ] || ! command -v gcc >/dev/null || ! command -v make >/dev/null; then
  echo "install-pgvector: apt-get install postgresql-15 postgresql-server-dev-15 gcc make" >&2
  export DEBIAN_FRONTEND=noninteractive
  pkgs="postgresql-15 postgresql-server-dev-15 gcc make libc6-dev"
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends $pkgs >&2
fi
if [ ! -f "$("$PGBIN/pg_config" --sharedir)/extension/vector.control" ]; then
  tgz="$(ls ../shared/vendor/pgvector-*.tar.gz 2>/dev/null | tail -n 1 || true)"
  if [ -z "$tgz" ]; then
    echo "install-pgvector: ../shared/vendor/pgvector-*.tar.gz not found; the PostgreSQL tests will skip" >&2
    exit 0
  fi
  echo "install-pgvector: building $(basename "$tgz")" >&2
  b="$(mktemp -d)"; trap 'rm -rf "$b"' EXIT
  tar -xzf "$tgz" -C "$b"
  (cd "$b"/pgvector-* && make -s PG_CONFIG="$PGBIN/pg_config" OPTFLAGS="" >&2 && $SUDO make -s install PG_CONFIG="$PGBIN/pg_config" >&2)
fi
echo "install-pgvector: $("$PGBIN/postgres" --version), pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$("$PGBIN/pg_config" --sharedir)/extension/vector.control")" >&2
