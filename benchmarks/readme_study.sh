#!/usr/bin/env bash
# The README's equal-budget study (issue 16), resumable: run it again to continue where it stopped.
#   GRU; 10 trials × 1,000 steps (batch 256) per method on the calibrated `small` simulator, under the SQN
#   protocol (each best configuration retrained on 3 split seeds × 1 init seed) and the time protocol (its one
#   split, by session end time, × 3 init seeds); the
#   RetailRocket sample of ../shared retrains the `small` (SQN protocol) best configurations on 5 split seeds.
#
#   bash benchmarks/readme_study.sh                         # every stage, one after the other
#   THREADS=1 bash benchmarks/readme_study.sh small-sqn &   # or stages side by side, one core each
#   THREADS=1 bash benchmarks/readme_study.sh small-time
#   bash benchmarks/readme_study.sh tiny-sqn                # the same budget on `tiny`: its time, for the README
#   .venv/bin/python tools/study_readme.py --readme         # then the README section from the results
#
# Results: benchmarks/results/study/<stage>/comparison.md (.csv, .png, study.json). The run records there are
# committed and their weights are not (.gitignore), so a fresh clone reports and goes on without retraining.
# Each stage prints its wall and CPU time; the README quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${STUDY_OUT:-benchmarks/results/study}
ALGOS=(popularity recency sknn vsknn supervised reward_ce sqn sa2c cql iql mcrl)
BUDGET=(--algo "${ALGOS[@]}" --trials 10 --steps 1000 --batch-size 256 --backbone gru --threads "${THREADS:-2}")

stage() {  # stage NAME ARGS...: one study, timed (CPU time too: unlike wall time, it holds on a busy machine)
  local name=$1; shift
  local TIMEFORMAT="stage $name: %0R s of wall time, %0U s user + %0S s system CPU"
  time "$PY" -m mcrl_kit study "$@" --out "$OUT/$name"
}

run() {
  case $1 in
    small-sqn) stage small-sqn --dataset simulator --scale small --protocol sqn --split-seeds 0 1 2 "${BUDGET[@]}" ;;
    small-time) stage small-time --dataset simulator --scale small --protocol time --seeds 0 1 2 "${BUDGET[@]}" ;;
    retailrocket-sample) stage retailrocket-sample --dataset retailrocket-sample --protocol sqn --split-seeds 0 1 2 3 4 \
      "${BUDGET[@]}" --reuse "$OUT/small-sqn/study.json" ;;
    tiny-sqn) stage tiny-sqn --dataset simulator --scale tiny --protocol sqn --split-seeds 0 1 2 "${BUDGET[@]}" ;;
    *) echo "unknown stage $1 (small-sqn | small-time | retailrocket-sample | tiny-sqn)" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then
  # shellcheck disable=SC2086  # STAGES is a list of names
  set -- ${STAGES:-small-sqn small-time retailrocket-sample}
fi
for name in "$@"; do
  run "$name"
done
