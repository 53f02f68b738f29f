#!/usr/bin/env bash
# `make prod`: the production topology on one machine. PostgreSQL (DATABASE_URL, the local
# cluster by default), gunicorn with 4 workers, and two `flask scheduler run` processes: one
# active, the other standing by to take over (PostgreSQL advisory lock). Ctrl-C stops all.
#
#   DATABASE_URL   default postgresql+psycopg://postgres@127.0.0.1:5432/trialmgr (created if missing)
#   SECRET_KEY     default: a random key for this run (sessions end when it stops)
#   BIND           default 127.0.0.1:8000      WORKERS  default 4
#   SEED=1         load the demo data into an empty database
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export FLASK_APP=wsgi
export DATABASE_URL="${DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/trialmgr}"
export SECRET_KEY="${SECRET_KEY:-$($BIN/python -c 'import secrets; print(secrets.token_urlsafe(48))')}"
BIND="${BIND:-127.0.0.1:8000}"
WORKERS="${WORKERS:-4}"

# the database: created if it does not exist, then migrated
$BIN/python - <<'PY'
import os
import sqlalchemy as sa
url = sa.engine.make_url(os.environ["DATABASE_URL"])
if url.get_backend_name() != "postgresql":
    raise SystemExit("make prod runs on PostgreSQL: set DATABASE_URL=postgresql+psycopg://...")
admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                        {"n": url.database}).scalar():
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
        print(f"created database {url.database}")
PY
$BIN/flask db upgrade
if [ "${SEED:-0}" = 1 ]; then $BIN/flask demo seed --if-empty; fi

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
$BIN/gunicorn -w "$WORKERS" -b "$BIND" --access-logfile - wsgi:app & pids+=($!)
$BIN/flask scheduler run & pids+=($!)
$BIN/flask scheduler run & pids+=($!)
echo "trialmgr on http://$BIND: gunicorn ($WORKERS workers), schedulers ${pids[1]} and ${pids[2]} (one active)"
wait -n "${pids[@]}"
