#!/usr/bin/env bash
# The one install script: CI (.ci/run), the README and the Docker images all call this.
# Usage: scripts/install.sh [EXTRAS]   (default EXTRAS: all)
# Installs the CPU build of torch first, so nothing pulls a multi-GB CUDA build; TORCH_SPEC overrides it
# (the CUDA worker image sets TORCH_SPEC to a CUDA wheel).
set -euo pipefail
extras="${1:-all}"
here="$(cd "$(dirname "$0")/.." && pwd)"
python -m pip install --upgrade pip >/dev/null
case "$extras" in
  *all*|*ray*|*service*|*schedulers*|*test*|*bench*)
    python -m pip install "${TORCH_SPEC:-torch==2.13.0}" ;;
esac
python -m pip install -e "${here}[${extras}]"
case "$extras" in
  *bench*)
    # Syne Tune (syne_mobster / syne_hypertune / syne_dyhpo peers) with --no-deps: its metadata pins
    # numpy<1.27 (every release that ships MOBSTER, Hyper-Tune and DyHPO does) and pip would downgrade
    # numpy 2; its code runs on numpy 2 (verified by tests/bench/test_peers.py and test_peers_contract.py).
    # Its runtime dependencies (autograd, dill, sortedcontainers, pandas) are in the bench extra.
    python -m pip install --no-deps "syne-tune==0.13.0"
    # SMAC3's random forest (pyrfr) has no wheel and builds only with SWIG already on PATH, so it cannot
    # sit in the bench extra; without it the smac_mf peer reports the ImportError instead of running.
    # --no-build-isolation: pip's isolated build environment hides this venv's site-packages from the
    # `swig` console script, which then fails with "No module named 'swig'" (a cached wheel masks it).
    python -m pip install "swig>=4,<5" "setuptools" "wheel" \
      && python -m pip install --no-build-isolation "pyrfr>=0.9,<0.10" \
      || echo "warning: pyrfr did not build; the smac_mf peer will be reported as unavailable" >&2 ;;
esac
