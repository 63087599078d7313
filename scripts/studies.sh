#!/usr/bin/env bash
# The studies behind docs/findings.md, in the order they were run. Each line
# is resumable: rerunning skips finished runs and resumes interrupted ones.
#   scripts/studies.sh RUNS_DIR TFDS_DIR [WORKERS]
# then: python scripts/findings.py --runs=RUNS_DIR --out=docs/findings.md --readme=README.md --figures=docs/figures
set -euo pipefail
runs=${1:?usage: scripts/studies.sh RUNS_DIR TFDS_DIR [WORKERS]}
data=${2:?usage: scripts/studies.sh RUNS_DIR TFDS_DIR [WORKERS]}
workers=${3:-auto}
cd "$(dirname "$0")/.."
data_flags=(--config.data.data_dir="$data" --config.data.download=False)
sweep() { python scripts/sweep.py --workers="$workers" "${data_flags[@]}" "$@"; }

sweep --config=experiments/configs/vanishing_gradients.py:epochs=2 --seeds=5 \
  --workdir="$runs/vanishing" \
  --only=sigmoid_d10,tanh_d10,relu_d10,relu_he_d10,sigmoid_d30,tanh_d30,relu_d30,relu_he_d30
sweep --config=experiments/configs/proxy_comparison.py --workdir="$runs/proxy"
sweep --config=experiments/configs/activation_comparison.py --seeds=5 --workdir="$runs/budget10"
# Their 1e-3 and raw-Glorot cells are the proxy's runs: copied, not retrained.
sweep --config=experiments/configs/learning_rates.py --seeds=5 --workdir="$runs/learning_rates" \
  --reuse="$runs/proxy"
sweep --config=experiments/configs/factorial_confound.py --seeds=5 --workdir="$runs/factorial" \
  --reuse="$runs/proxy"
