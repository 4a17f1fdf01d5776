#!/usr/bin/env bash
# Cross-cascading (paper Fig. 7) vs the plain DensePose head: same data, same schedule.
#   bash benchmarks/compare_cascade.sh [WORKDIR] [ITERATIONS] [PRESET]
# Defaults are the small CPU run quoted in the issue note (tiny preset, 800 iterations, ~6 min per
# run on one core); on a GPU use e.g. `bash benchmarks/compare_cascade.sh runs/cascade 20000 light`.
# Prints the final evaluation (GPS / GPSm / IOU AP, box AP) of both runs.
set -euo pipefail
work=${1:-runs/compare_cascade}; iters=${2:-800}; preset=${3:-tiny}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work" && cd "$work"
[ -f data/train/annotations.json ] || densepose synth --out data --num 96 --size 192 --seed 7 --split 0.83 --max-people 2 --no-progress
for run in plain cascade; do
  cascade=false; [ "$run" = cascade ] && cascade=true
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} densepose train --config "$repo/configs/light_synth.yaml" --data data --out "$run" \
    model_preset="$preset" model.mask_on=true model.keypoint_on=true model.cascade=$cascade \
    solver.max_iter="$iters" solver.ims_per_batch=2 solver.warmup_iters=50 data.num_workers=0 data.val_root=data/val \
    checkpoint_period=100000 log_period=50 > "$run.log" 2>&1 &
done
wait
for run in plain cascade; do
  echo "$run: $(grep -h 'evaluation' "$run/log.txt" | tail -1 | sed 's/.*evaluation[^{]*//')"
done
