#!/usr/bin/env bash
# Sets up (scripts/setup.sh), checks the architecture's import contracts (pyproject.toml, docs/architecture.md)
# and runs the whole test suite; the tests marked emulated_board build or start the emulated aarch64 board
# themselves (tests/fixtures/board.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lint-imports --no-logo --no-cache
exec .venv/bin/python -m pytest "$@"
