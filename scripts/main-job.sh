#!/usr/bin/env bash
# The main job on the shipped samples: export every variant of both sample models, then bench them on the
# local device with on-device accuracy. Writes out/ and out/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEPRUNE_SETUP=minimal bash scripts/setup.sh
edgeprune=.venv/bin/edgeprune
rm -rf out/digits_cnn out/mobilenet_digits
"$edgeprune" export models/digits_cnn.keras -o out/digits_cnn --calibration models/digits_calibration.npz
"$edgeprune" export models/mobilenet_digits.keras -o out/mobilenet_digits \
  --calibration models/mobilenet_digits_calibration.npz
"$edgeprune" bench out/digits_cnn out/mobilenet_digits --device local \
  --data models/digits_eval.npz --data models/mobilenet_digits_eval.npz \
  -o out/results.json --label main-job "$@"
