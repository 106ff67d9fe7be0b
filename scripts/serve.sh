#!/usr/bin/env bash
# One command for a local demo: install into .venv, migrate, create the demo login, start a live
# debate and serve it on http://127.0.0.1:8000 (SQLite, in-memory channel layer, offline LLM
# unless DATABASE_URL, REDIS_URL or DEBATE_LLM say otherwise).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
# The page's own origin must be allowed to open the WebSocket, whatever HOST and PORT say.
export WS_ALLOWED_ORIGINS="${WS_ALLOWED_ORIGINS:-http://$HOST:$PORT,http://localhost:$PORT}"
# DEBUG stays off (settings' default) and, without SECRET_KEY, the server keeps a random key of
# its own in STATE_DIR. The demo is served over plain http: its admin cookies cannot be Secure.
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-0}" CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-0}"
DEMO_PASSWORD="${DEMO_PASSWORD:-$(python -c 'import secrets; print(secrets.token_urlsafe(18))')}"

python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
python manage.py ensure_demo_user "--password=$DEMO_PASSWORD"

export HOST PORT
python -m tradeapp.serve &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM

python scripts/start_demo_debate.py --url "http://$HOST:$PORT" "--password=$DEMO_PASSWORD" || true
echo
echo "  Open http://$HOST:$PORT/  and sign in as  demo / $DEMO_PASSWORD"
echo "  Admin: http://$HOST:$PORT/admin/   API docs (after signing in to the admin): http://$HOST:$PORT/api/docs/"
echo "  Stop with Ctrl-C."
echo
wait "$server"
