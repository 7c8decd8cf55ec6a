#!/usr/bin/env bash
# Installs every Debian package rmkit needs, makes sure an optimized BLAS backs libtorch,
# then configures and builds. Idempotent: safe to run again.
#   bash scripts/setup.sh            # deps + Release build in build/
#   RMKIT_SKIP_APT=1 bash scripts/setup.sh   # build only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

PKGS=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libgloo-dev
  libopenblas0-openmp libtcmalloc-minimal4 libgoogle-perftools-dev libdnnl-dev
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev libssl-dev openssl libsqlite3-dev
  libgtest-dev libgmock-dev
  sentencepiece python3-torch python3-numpy curl
)

if [ "${RMKIT_SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  t0=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
  echo "setup: apt packages installed in $(( $(date +%s) - t0 )) s"
fi

# libtorch's generic BLAS binds to whatever libblas.so.3 the alternatives system selects;
# the netlib reference BLAS is ~20x slower than OpenBLAS for fp32 matmul.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
blas=$(readlink -f /usr/lib/$arch/libblas.so.3 || true)
case "$blas" in
  *openblas*) echo "setup: BLAS ok: $blas" ;;
  *)
    cand=$(ls /usr/lib/$arch/openblas-openmp/libblas.so.3 2>/dev/null || true)
    if [ -n "$cand" ]; then
      ${SUDO:-} update-alternatives --set libblas.so.3-$arch "$cand" >/dev/null
      echo "setup: switched libblas.so.3 to $cand"
    else
      echo "setup: WARNING: libblas.so.3 is $blas (reference BLAS is ~20x slower)" >&2
    fi ;;
esac

t0=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "setup: build finished in $(( $(date +%s) - t0 )) s"
