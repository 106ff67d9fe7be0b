#!/bin/sh
# Container entry point: `daphne` serves the app, `migrate` prepares the database, anything else runs as is.
set -eu

case "${1:-daphne}" in
  daphne)
    # Metrics files belong to this container's processes only: start clean (DESIGN §4b).
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
      rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
    # The one production entry point: daphne with the tuned defaults (listen backlog, handshake
    # timeout, pings, pooled PostgreSQL connections), each overridable by its variable.
    export HOST="${HOST:-0.0.0.0}"
    exec python -m tradeapp.serve
    ;;
  migrate)
    # Stale debates are taken over by the daphne processes themselves once they serve traffic.
    exec python manage.py migrate --noinput
    ;;
  *)
    exec "$@"
    ;;
esac
