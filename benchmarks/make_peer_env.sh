#!/usr/bin/env bash
# The peer's environment for `benchmarks/bench.py` (`make bench`): RecBole 1.2.1 in its own venv
# (.venv-peer, git-ignored), because its pins (colorlog==4.7.2, colorama==0.4.4, ray, …)
# are not the kit's. torch is pinned to the kit's version so that pip takes the local CPU
# wheel and the comparison runs on the same torch (an unpinned torch pulls a 5 GB CUDA build);
# pandas < 3 because RecBole 1.2.1 fills missing values with chained in-place `fillna`,
# which pandas 3's copy-on-write turns into a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${PEER_VENV:-.venv-peer}
command -v "$PYTHON" >/dev/null || PYTHON=python3
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "recbole==1.2.1" "pandas<3"
"$VENV/bin/python" -c "import recbole, torch, pandas; print('peer env:', 'recbole', recbole.__version__, 'torch', torch.__version__, 'pandas', pandas.__version__)"
