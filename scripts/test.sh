#!/usr/bin/env bash
# Runs every test: installs missing system packages, builds, then the Swift test suite
# (which includes the h5py/numpy interop tests, made mandatory here). Ends with one
# "N passed, N failed" line counted from XCTest's per-test results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export BWSSL_REQUIRE_PYTHON=1
swift build --build-tests
# The MPI builds of bwtrain and bwanalyze (package trait MPI, their own build folder);
# DataParallelTests and DistributedAnalysisTests run them under mpirun against one process of the
# same build.
swift build --traits MPI --scratch-path .build/mpi --product bwtrain
swift build --traits MPI --scratch-path .build/mpi --product bwanalyze
export BWSSL_MPI_BWTRAIN="$PWD/.build/mpi/debug/bwtrain" BWSSL_MPI_BWANALYZE="$PWD/.build/mpi/debug/bwanalyze" BWSSL_REQUIRE_MPI=1
# The bwact Python package is installed with pip into a venv that sees Debian's numpy, h5py and
# torch (Debian refuses a system-wide pip install; its h5py is registered under another
# distribution name, hence --no-deps). The Swift suite runs the package's tests with it.
venv=.build/bwact-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
# transformers and timm, for the recorder's tests on their real model classes (python/tests/test_models.py;
# transformers 5 and torch 2 are `make test-models`). Pinned to the newest releases that run on Debian's
# torch 1.13: transformers 4.50 imports torch.distributed.tensor (torch 2.x) and 4.52 refuses torch < 2.1.
# --no-deps keeps Debian's numpy, h5py, torch and torchvision (python3-torchvision, for timm) and
# PyYAML, requests and typing-extensions (python3-torch's dependencies); the rest of their dependencies
# is listed here. To bump: `pip download --no-deps transformers==X timm==Y`, read the wheels'
# Requires-Dist (and whether transformers still accepts torch 1.13), pin compatible dependencies, then
# `make test` (it reinstalls these pins into the existing venv).
"$venv/bin/pip" install --quiet --no-deps transformers==4.49.0 timm==1.0.31 huggingface-hub==0.36.2 \
  tokenizers==0.21.4 safetensors==0.8.0 regex==2026.12.2 tqdm==4.70.1 filelock==4.3.2 fsspec==2026.9.0 \
  packaging==26.4 hf-xet==1.8.0
# rsatoolbox, for the RSA cross-check (SimilarityTests): 0.2.0 is the newest that runs on Debian's
# scikit-learn 1.2 (0.3 imports sklearn.utils.validation.validate_data, new in 1.6); --no-deps keeps
# Debian's numpy, scipy, scikit-learn, scikit-image, pandas, matplotlib and networkx (setup.sh), and
# tqdm and joblib come from the pins above and Debian.
"$venv/bin/pip" install --quiet --no-deps rsatoolbox==0.2.0
"$venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps --force-reinstall ./python
rm -rf python/build python/bwact.egg-info
export BWACT_PYTHON="$PWD/$venv/bin/python"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log" || status=$?
passed=$(grep -cE "^Test Case '.*' passed" "$log" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$log" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$log" || true)
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
