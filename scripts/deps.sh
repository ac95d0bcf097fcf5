#!/usr/bin/env bash
# Checks the system libraries SSF builds against (OpenBLAS, libjpeg, libpng, zlib, Open MPI, pkg-config).
# As root it installs whatever is missing with apt-get; otherwise it prints the exact command.
set -euo pipefail

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if command -v pkg-config >/dev/null 2>&1; then
  pkg-config --exists openblas 2>/dev/null || missing+=(libopenblas-dev)
  pkg-config --exists libpng 2>/dev/null || missing+=(libpng-dev)
  pkg-config --exists ompi-c 2>/dev/null || missing+=(libopenmpi-dev)
else
  missing+=(libopenblas-dev libpng-dev libopenmpi-dev)
fi
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
[ -f /usr/include/jpeglib.h ] || ls /usr/include/*/jpeglib.h >/dev/null 2>&1 || missing+=(libjpeg-dev)
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  # One line before and one after; apt's and dpkg's own output goes to a log, shown only on failure.
  log="$(mktemp -t ssf-apt.XXXXXX)"
  echo "Installing missing system packages: ${missing[*]} ..." >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}"; } >"$log" 2>&1; then
    echo "apt-get failed; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  rm -f "$log"
  echo "Installed ${missing[*]}." >&2
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with:  sudo sh -c '$cmd'" >&2
  exit 1
fi
