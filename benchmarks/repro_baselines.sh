#!/usr/bin/env bash
# Reproduces the README's baseline table (issue: every backbone × {supervised, sqn, sa2c}
# beats popularity on the simulator at a scale that trains in minutes on 2 cores).
#   bash benchmarks/repro_baselines.sh            # runs into runs/baselines, prints the table
# Budget: `small` simulator (3,000 items, 20k sessions, ~100k train transitions),
# 4,000 steps of batch 256 (~10 epochs); SA2C switches after 1,500 steps (~4 epochs,
# the reference's 15,000 steps are ~4 epochs of RetailRocket). Seeded; reruns reuse
# finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/baselines}
STEPS=${STEPS:-4000}
SEEDS=${SEEDS:-0}
THREADS=${THREADS:-1}
DATA=$OUT/data-small
[ -f "$DATA/stats.json" ] || $PY -m mcrl_kit prepare --source simulator --scale small --seed 0 --out "$DATA" --no-progress
train() {  # name, then train arguments
  local name=$1; shift
  [ -f "$OUT/$name/metrics.json" ] && return 0
  $PY -m mcrl_kit train --data "$DATA" --steps "$STEPS" --eval-every 500 --threads "$THREADS" --no-progress \
    --out "$OUT/$name" --resume "$@" > /dev/null
}
runs=()
for seed in $SEEDS; do
  train "popularity-s$seed" --algo popularity --seed "$seed"; runs+=("$OUT/popularity-s$seed")
  for backbone in gru caser nextitnet sasrec; do
    train "$backbone-supervised-s$seed" --backbone "$backbone" --algo supervised --seed "$seed"
    train "$backbone-sqn-s$seed" --backbone "$backbone" --algo sqn --seed "$seed"
    train "$backbone-sa2c-s$seed" --backbone "$backbone" --algo sa2c --seed "$seed" --set switch_step=1500
    runs+=("$OUT/$backbone-supervised-s$seed" "$OUT/$backbone-sqn-s$seed" "$OUT/$backbone-sa2c-s$seed")
  done
done
$PY -m mcrl_kit compare "${runs[@]}" --markdown
