#!/usr/bin/env bash
# One command for the whole test suite: install into .venv (and Debian's Chromium, nginx and
# redis-server for the tests that run them), then ruff format --check, ruff check, the import
# contracts and pytest in random order.
# Extra arguments go to pytest: `./scripts/test.sh -m "not e2e and not browser"` is the fast lane.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

# Debian's packages the suite runs: Chromium (browser tests), nginx (the load-balancer tests run
# it with docker/nginx.conf) and redis-server (the multi-Redis tests start their own nodes).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing Debian's ${missing[*]} for the tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "==> ruff format --check"
ruff format --check .
echo "==> ruff check"
ruff check .
echo "==> import contracts (lint-imports)"
lint-imports
echo "==> pytest (random order: --randomly-seed=N replays one, -p no:randomly keeps file order)"
pytest "$@"
