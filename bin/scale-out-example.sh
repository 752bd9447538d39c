#!/usr/bin/env bash
# nano-org scaled out on one machine: PostgreSQL, Redis, the schema, Celery job workers and gunicorn
# web workers, in the order an operator starts them (README "Scaling out"). The scale-out test suite
# (tests/scaleout) and bench/bench_scale.py run this very script.
#
#   bin/scale-out-example.sh start    # start everything (needs the Debian packages postgresql, redis-server)
#   bin/scale-out-example.sh stop     # stop everything this script started
#
# Settings (environment, defaults): SCALE_DIR=./scale-out (database cluster, Redis, logs, pid files
# and the shared instance folder), PG_PORT=5432, REDIS_PORT=6379, NANOORG_PORT=8050,
# NANOORG_WEB_WORKERS=2. Run it from the project's virtual environment
# (nanoorg, celery and gunicorn on PATH). As root, PostgreSQL runs as the user postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE_DIR="$(realpath -m "${SCALE_DIR:-./scale-out}")"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

# Every web and job worker reads the same settings (config.py):
export DATABASE_URL="postgresql+psycopg://nanoorg@127.0.0.1:${PG_PORT}/nanoorg"
export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
export NANOORG_INSTANCE="$SCALE_DIR/instance"   # shared file store: on several machines, one network volume
export NANOORG_WEB_WORKERS="${NANOORG_WEB_WORKERS:-2}"

start() {
  [ -n "$PG_BIN" ] && command -v redis-server >/dev/null || {
    echo "PostgreSQL or Redis is not installed: apt-get install -y postgresql redis-server" >&2; exit 1; }
  mkdir -p "$SCALE_DIR/postgres" "$SCALE_DIR/logs" && chmod 755 "$SCALE_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$SCALE_DIR/postgres"
  export PATH="$PG_BIN:$PATH" PGDATA="$SCALE_DIR/postgres/data"

  # 1. Database: a PostgreSQL cluster on 127.0.0.1, and an empty database 'nanoorg'
  as_postgres initdb -D "$PGDATA" -U nanoorg --auth=trust -E UTF8 >/dev/null
  as_postgres pg_ctl -D "$PGDATA" -l "$SCALE_DIR/postgres/server.log" -w -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $SCALE_DIR/postgres" start >/dev/null
  createdb -h 127.0.0.1 -p "$PG_PORT" -U nanoorg nanoorg

  # 2. Redis: the job queue and job results (nothing is kept on disk)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --daemonize yes --pidfile "$SCALE_DIR/redis.pid" --logfile "$SCALE_DIR/logs/redis.log"

  # 3. Schema: create or upgrade the tables once, before any worker starts
  nanoorg migrate

  # 4. Job workers (uploads, similarity searches, viewer jobs; NANOORG_JOB_WORKERS at once each)
  celery -A app:celery_app worker --loglevel INFO --detach --pidfile "$SCALE_DIR/celery.pid" --logfile "$SCALE_DIR/logs/celery.log"

  # 5. Web workers: gunicorn's master seeds the demo bank on the first start, then forks the workers
  gunicorn -c gunicorn.conf.py app:server --daemon --pid "$SCALE_DIR/gunicorn.pid" --access-logfile "$SCALE_DIR/logs/access.log" --error-logfile "$SCALE_DIR/logs/gunicorn.log"
}

stop_pidfile() {  # stop the process (group) in pid file $1 with signal $2, wait up to 30 s
  [ -f "$1" ] || return 0
  local pid; pid="$(cat "$1")"
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$1"
}

stop() {
  stop_pidfile "$SCALE_DIR/gunicorn.pid" TERM
  stop_pidfile "$SCALE_DIR/celery.pid" TERM
  stop_pidfile "$SCALE_DIR/redis.pid" TERM
  [ -f "$SCALE_DIR/postgres/data/postmaster.pid" ] && \
    as_postgres "$PG_BIN/pg_ctl" -D "$SCALE_DIR/postgres/data" -m fast -w stop >/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
