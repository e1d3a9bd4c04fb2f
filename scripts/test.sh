#!/usr/bin/env bash
# Sets up (scripts/setup.sh), starts the emulated aarch64 board for the tests marked emulated_board, and
# runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
