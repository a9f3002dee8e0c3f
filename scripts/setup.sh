#!/usr/bin/env bash
# Installs what bwssl-suite needs on Debian/Ubuntu, skipping packages already present.
# The Swift toolchain itself (6.0 or newer) must already be on PATH.
set -euo pipefail

packages=(
  pkg-config
  libhdf5-dev liblapacke-dev libopenblas-dev      # the C libraries we link
  python3-h5py python3-numpy python3-sklearn      # interop and cross-check tests
  python3-nbformat python3-pandas                 # notebook validation; the exported notebook reloads CSVs with pandas
  python3-torch python3-venv python3-setuptools python3-wheel   # the bwact package's tests (python/), CPU PyTorch
  python3-torchvision                             # timm needs it (the recorder's tests on timm's ViT)
  python3-scipy python3-matplotlib python3-networkx python3-skimage   # rsatoolbox (RSA cross-check) imports them
  libopenmpi-dev openmpi-bin                      # the MPI build (swift build --traits MPI) and its tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
  echo "setup: the Swift toolchain (swift 6.0 or newer) is not on PATH" >&2
  exit 1
fi
