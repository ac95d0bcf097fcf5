#!/usr/bin/env python3
"""Image folders for `ssf bench data` (nothing is committed; written under OUT, default
~/.cache/ssf/bench-images):

- cifar-upscaled/train/<class>/: the first 64 images of each CIFAR-10 class from tools/reproduce.sh's
  subset, upscaled 32 → 256 px (bicubic) and saved as JPEG quality 90;
- photos/train/photo/: 48 large photo-sized JPEGs (3000×2000, quality 90) made from the three test
  photos in ~/.cache/ssf/photos, each upscaled, cropped at a different offset and given fine noise so
  the encoder sees photo-like detail.

Pinned: Pillow 13.0.0, numpy.  ~/venv-torch/bin/python tools/bench/make_bench_images.py [OUT]
"""
import os
import sys

import numpy as np
import PIL
from PIL import Image

assert PIL.__version__ == "13.0.0", PIL.__version__
cache = os.path.expanduser(os.environ.get("SSF_CACHE", "~/.cache/ssf"))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "bench-images")
cifar = os.path.join(cache, "reproduce", "cifar10-500", "train")
rng = np.random.default_rng(0)

if os.path.isdir(cifar):
    for cls in sorted(os.listdir(cifar)):
        dst = os.path.join(out, "cifar-upscaled", "train", cls)
        os.makedirs(dst, exist_ok=True)
        for name in sorted(os.listdir(os.path.join(cifar, cls)))[:64]:
            im = Image.open(os.path.join(cifar, cls, name)).convert("RGB").resize((256, 256), Image.BICUBIC)
            im.save(os.path.join(dst, os.path.splitext(name)[0] + ".jpg"), quality=90)
else:
    print(f"no CIFAR-10 subset at {cifar} (tools/reproduce.sh makes it); skipping cifar-upscaled", file=sys.stderr)

sources = [Image.open(os.path.join(cache, "photos", n)).convert("RGB") for n in ("chelsea.png", "coffee.png", "rocket.jpg")]
dst = os.path.join(out, "photos", "train", "photo")
os.makedirs(dst, exist_ok=True)
for i in range(48):
    src = sources[i % 3]
    big = src.resize((3600, int(3600 * src.height / src.width)), Image.BICUBIC)
    x, y = (i * 37) % (big.width - 3000), (i * 23) % max(1, big.height - 2000)
    crop = np.asarray(big.crop((x, y, x + 3000, y + 2000)), dtype=np.int16)
    crop = np.clip(crop + rng.integers(-6, 7, crop.shape), 0, 255).astype(np.uint8)
    Image.fromarray(crop).save(os.path.join(dst, f"{i:03d}.jpg"), quality=90)
print("wrote", out)
