#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite; the tests marked emulated_board build or start the
# emulated aarch64 board themselves (tests/fixtures/board.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
