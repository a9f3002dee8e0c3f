#!/usr/bin/env bash
# `make test-models`: the bwact package's tests (python/tests, with the recorder on real Hugging Face and
# timm model classes and the docs/pytorch-recipes.md blocks) on the current libraries: PyPI's torch 2.x,
# transformers 5.x and timm 1.x, in their own venv (.build/models-venv; `make test` covers Debian's
# torch 1.13 with transformers 4.x). Not run by CI: the first run downloads about 3.1 GB (PyPI's Linux
# torch wheel brings its CUDA libraries) and leaves 5.7 GB on disk; later runs reuse the venv.
# BWANALYZE=path/to/bwanalyze skips building it (the tests check the files with it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${BWANALYZE:-}" ]; then
  swift build -c release --product bwanalyze
  BWANALYZE="$PWD/.build/release/bwanalyze"
fi
# A plain venv: numpy and h5py come from PyPI too. torch and torchvision must be a matching pair (a
# torchvision wheel loads only with its own torch build). To bump: newer pins here, then
# `rm -rf .build/models-venv && make test-models`.
venv=.build/models-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.2 transformers==5.25.0 timm==1.0.31 \
  numpy==2.4.6 h5py==3.16.0
"$venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps --force-reinstall ./python
rm -rf python/build python/bwact.egg-info
"$venv/bin/python" -c 'import torch, transformers, timm; print(f"torch {torch.__version__}, transformers {transformers.__version__}, timm {timm.__version__}")'
BWACT_REQUIRE=1 BWANALYZE="$BWANALYZE" "$venv/bin/python" -m unittest discover -v -s python/tests
