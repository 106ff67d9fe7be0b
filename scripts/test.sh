#!/usr/bin/env bash
# One command for the whole test suite: install into .venv (and Debian's Chromium for the browser
# tests), then ruff format --check, ruff check, the import contracts and pytest in random order.
# Extra arguments go to pytest: `./scripts/test.sh -m "not e2e and not browser"` is the fast lane.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's Chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi

echo "==> ruff format --check"
ruff format --check .
echo "==> ruff check"
ruff check .
echo "==> import contracts (lint-imports)"
lint-imports
echo "==> pytest (random order: --randomly-seed=N replays one, -p no:randomly keeps file order)"
pytest "$@"
