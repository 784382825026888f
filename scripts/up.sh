#!/usr/bin/env bash
# Installs and builds Berth, then runs `berth up` (server and local agent in one process).
# Arguments go to `berth up`: `sudo bash scripts/up.sh -H unix:///run/berth.sock`.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/install.sh
exec node dist/src/cli/berth.js up "$@"
