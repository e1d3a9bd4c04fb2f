#!/usr/bin/env bash
# The main job on the shipped samples: export every variant of both sample models, bench them on the local
# device with on-device accuracy, and report. Writes out/, out/results.json and out/report.{html,md} (the README's
# results table is the "Runs" table of out/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEPRUNE_SETUP="${EDGEPRUNE_SETUP:-minimal}" bash scripts/setup.sh
edgeprune=.venv/bin/edgeprune
rm -rf out/digits_cnn out/mobilenet_digits
"$edgeprune" export models/digits_cnn.keras -o out/digits_cnn --calibration models/digits_calibration.npz
"$edgeprune" export models/mobilenet_digits.keras -o out/mobilenet_digits \
  --calibration models/mobilenet_digits_calibration.npz
status=0
"$edgeprune" bench out/digits_cnn out/mobilenet_digits --device local \
  --data models/digits_eval.npz --data models/mobilenet_digits_eval.npz \
  -o out/results.json --label main-job "$@" || status=$?
[ "$status" -le 1 ] || exit "$status"  # 1: some runs failed, still worth a report; more: no results
"$edgeprune" report out/results.json -o out/report.html --markdown out/report.md
exit "$status"
