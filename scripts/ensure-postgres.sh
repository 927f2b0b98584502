#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with a database
# `test` that trusts local logins as `postgres`: what the PostgreSQL tests
# (pg/tests, tests/pg_*.rs) use when $ROTOR_PG_URL is not set.
#
# Some machine kinds start such a server before CI; elsewhere this installs
# Debian's postgresql package if needed and starts a throwaway cluster
# (initdb, trust auth, data under /tmp) that lives until the machine goes.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq postgresql
fi
if ! ready; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  dir=$(mktemp -d /tmp/rotor-postgres.XXXXXX)
  chown postgres "$dir"
  # initdb refuses to run as root: the package's postgres user runs it.
  su postgres -s /bin/sh -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -l $dir/server.log -w start \
    -o '-c listen_addresses=127.0.0.1 -p 5432 -k $dir'"
fi
ready || { echo "ensure-postgres: no server on 127.0.0.1:5432" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"
fi
