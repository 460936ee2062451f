#!/usr/bin/env bash
# The suite's GPU path in one command (issue 14): the tests marked `gpu`, then throughput against a
# hand-written CUDA loop and workers packed on one GPU, printed as one table (benchmarks/gpu_check.py
# says what each row measures).  Exits non-zero on any failure, a missed target, or after 8 minutes.
#
#   benchmarks/gpu_check.sh [FASHION_MNIST_DIR]    # default: $FASHION_MNIST_DIR, else Debian's folder
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# This checkout's code, whatever an installed copy says.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export WANDB_MODE=disabled WANDB_SILENT=true
export FASHION_MNIST_DIR="${1:-${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}}"

# Fail fast, before any import of the suite or any test: without CUDA nothing here can be measured.
if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check.sh needs a CUDA GPU: torch.cuda.is_available() is False on $(hostname)." >&2
    echo "Run it on a machine with one; 'python benchmarks/gpu_check.py --plan' shows what it would do." >&2
    exit 2
fi

timeout --signal=INT --kill-after=20 480 python benchmarks/gpu_check.py --data-dir "$FASHION_MNIST_DIR"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 130 ]; then
    echo "gpu_check.sh: not finished within 8 minutes (the budget of issue 14)" >&2
fi
exit "$status"
