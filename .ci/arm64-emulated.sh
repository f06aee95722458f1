#!/usr/bin/env bash
# The portable path under emulation: cross-compiles for arm64 (no assembly:
# the GEMMs run on gonum's BLAS, the other kernels on their references) and
# runs the kernel tests and a fidelity subset (tiny-bert, every row against
# ../shared/refs) with qemu-aarch64-static. About 6 minutes on the 2-vCPU
# development machine under load; installs qemu-user-static when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-aarch64-static >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y qemu-user-static >/dev/null
  else
    echo "arm64-emulated.sh: qemu-aarch64-static is missing and cannot be installed here (apt-get install qemu-user-static)" >&2
    exit 1
  fi
fi
export GOARCH=arm64
go vet ./encoder/...
go test -timeout 15m -exec qemu-aarch64-static ./encoder/kernels
go test -timeout 15m -exec qemu-aarch64-static ./encoder -run 'TestFidelity$/^tiny-bert$'
