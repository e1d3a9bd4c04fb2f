#!/usr/bin/env bash
# The whole test suite, several times in a row, on a machine kept busy by CPU-burning processes: the proof that
# no test races the clock. With --cold, every run also builds the emulated board from nothing (a cache folder
# of its own, so the usual cache is left alone).
#   bash scripts/stress-suite.sh [--runs N] [--burners N] [--cold] [-- PYTEST ARGS...]
# Prints each run's closing pytest line and exits non-zero if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 burners=2 cold=0
while (( $# )); do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --burners) burners="$2"; shift 2 ;;
        --cold) cold=1; shift ;;
        --) shift; break ;;
        *) echo "usage: $0 [--runs N] [--burners N] [--cold] [-- PYTEST ARGS...]" >&2; exit 2 ;;
    esac
done
[[ "${runs}" =~ ^[1-9][0-9]*$ && "${burners}" =~ ^[0-9]+$ ]] || { echo "$0: --runs and --burners take whole numbers" >&2; exit 2; }

log() { echo "stress-suite: $*" >&2; }

burner_pids=()
scratch="$(mktemp -d)"
stop() {
    if (( ${#burner_pids[@]} )); then kill "${burner_pids[@]}" 2>/dev/null || true; fi
    if (( cold )); then bash scripts/emulated-board.sh down >/dev/null 2>&1 || true; fi
    rm -rf "${scratch}"
}
trap stop EXIT

bash scripts/setup.sh
for _ in $(seq 1 "${burners}"); do
    ( while :; do :; done ) &
    burner_pids+=("$!")
done
log "${burners} CPU burners running beside the suite ($(nproc) cores)"

failed=0
for run in $(seq 1 "${runs}"); do
    if (( cold )); then
        bash scripts/emulated-board.sh down >/dev/null 2>&1 || true
        export EDGEPRUNE_BOARD_CACHE="${scratch}/board-cache-${run}"
    fi
    log "run ${run} of ${runs}${EDGEPRUNE_BOARD_CACHE:+ (cold board: cache ${EDGEPRUNE_BOARD_CACHE})}"
    output="${scratch}/run-${run}.log"
    started=${SECONDS}
    if CI=1 .venv/bin/python -m pytest -p no:cacheprovider "$@" >"${output}" 2>&1; then status=ok; else status=FAILED; failed=1; fi
    log "run ${run}: ${status} in $((SECONDS - started)) s: $(tail -n 1 "${output}")"
    if [[ "${status}" == FAILED ]]; then
        cp "${output}" "stress-run-${run}.log"
        log "run ${run}'s output kept in stress-run-${run}.log"
    fi
done
exit "${failed}"
