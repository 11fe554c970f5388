#!/usr/bin/env bash
# Tunes MCRL's defaults on the VALIDATION split only (issue: K, loss weights, τ, warm-up),
# one change from the defaults at a time, one seed, the budget of repro_mcrl.sh (GRU4Rec,
# 2,000 steps; the `default` run is the same run as repro_mcrl.sh's mcrl-default-s0).
#   bash benchmarks/tune_mcrl.sh          # runs into runs/tune, prints the validation table
# The candidates' test metrics are never read here: pick the best validation row, then
# report its test metrics over 3 seeds with
#   TAG=tuned MCRL="--set KEY=VALUE ..." ABLATIONS=0 bash benchmarks/repro_mcrl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/tune}
STEPS=${STEPS:-2000}
SEED=${SEED:-0}
BACKBONE=${BACKBONE:-gru}
THREADS=${THREADS:-1}
DATA=${DATA:-runs/baselines/data-small}
[ -f "$DATA/stats.json" ] || $PY -m mcrl_kit prepare --source simulator --scale small --seed 0 --out "$DATA" --no-progress
CANDIDATES=${CANDIDATES:-"default neg=20 lambda_conservative=0.1 lambda_reward=0.1,lambda_transition=0.1 temperature=0.5 warmup_steps=500"}
# BASE: settings under every candidate, e.g. BASE=temperature=0.2 (the first defaults, as in the README)
BASE=${BASE:-}
runs=()
for cand in $CANDIDATES; do
  sets=()
  for x in ${BASE//,/ }; do sets+=(--set "$x"); done
  if [ "$cand" != default ]; then IFS=, read -r -a kv <<< "$cand"; for x in "${kv[@]}"; do sets+=(--set "$x"); done; fi
  name="mcrl-${BASE:+${BASE//[=,]/-}-}${cand//[=,]/-}-s$SEED"
  [ -f "$OUT/$name/metrics.json" ] || $PY -m mcrl_kit train --data "$DATA" --backbone "$BACKBONE" --algo mcrl \
    --steps "$STEPS" --eval-every 500 --threads "$THREADS" --seed "$SEED" --no-progress --out "$OUT/$name" --resume \
    "${sets[@]}" > /dev/null
  runs+=("$OUT/$name")
done
echo "## validation metrics (best checkpoint by validation purchase NDCG@10; seed $SEED)"
$PY -m mcrl_kit compare "${runs[@]}" --split val --no-merge --markdown
