#!/usr/bin/env python3
"""Writes the image decoding and resizing fixtures for Tests/SSFDataTests.

Small encoded images (RGB, grayscale and CMYK JPEG; RGB, RGBA, palette and 16-bit PNG), the
pixels Pillow decodes from them, and Pillow's bicubic/bilinear resizes of a random image, so
the Swift tests can check decoding and resampling without Python.

Pinned: Pillow 13.0.0, numpy, safetensors (the venv of tools/gen_engine_fixtures.py):
    ~/venv-torch/bin/python tools/gen_image_fixtures.py
"""
import io
import json
import os

import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

assert PIL.__version__ == "13.0.0", f"expected Pillow 13.0.0, found {PIL.__version__}"
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SSFDataTests", "Fixtures")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)


def smooth_rgb(w, h):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


tensors = {}
meta = {}


def add_encoded(name, pil_image, fmt, **kwargs):
    buf = io.BytesIO()
    pil_image.save(buf, fmt, **kwargs)
    data = buf.getvalue()
    ext = "jpg" if fmt == "JPEG" else "png"
    with open(os.path.join(OUT, f"{name}.{ext}"), "wb") as f:
        f.write(data)
    decoded = Image.open(io.BytesIO(data))
    if decoded.mode in ("I;16", "I"):
        # 16-bit gray scales to 8 bits (value / 257), with no gamma conversion.
        rgb = np.repeat((np.asarray(decoded).astype(np.float64) / 257.0).round()[..., None], 3, -1)
    else:
        rgb = np.asarray(decoded.convert("RGB")).astype(np.float64)
    tensors[f"{name}.rgb"] = rgb.astype(np.float32)
    meta[name] = f"{name}.{ext}"


base = smooth_rgb(23, 17)
add_encoded("rgb_jpeg", Image.fromarray(base), "JPEG", quality=90)
add_encoded("gray_jpeg", Image.fromarray(base[..., 0]), "JPEG", quality=90)
add_encoded("cmyk_jpeg", Image.fromarray(base).convert("CMYK"), "JPEG", quality=95)
add_encoded("rgb_png", Image.fromarray(base), "PNG")
alpha = np.concatenate([base, rng.integers(0, 256, base.shape[:2] + (1,), dtype=np.uint8)], -1)
add_encoded("rgba_png", Image.fromarray(alpha, "RGBA"), "PNG")
add_encoded("palette_png", Image.fromarray(base).quantize(16), "PNG")
gray16 = (base[..., 1].astype(np.uint16) * 257)
add_encoded("gray16_png", Image.fromarray(gray16), "PNG")

source = rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)
tensors["resize.source"] = source.astype(np.float32)
for name, flt in [("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)]:
    for (w, h) in [(16, 20), (64, 48), (41, 13)]:
        out = Image.fromarray(source).resize((w, h), flt)
        tensors[f"resize.{name}.{w}x{h}"] = np.asarray(out).astype(np.float32)

save_file(tensors, os.path.join(OUT, "images.safetensors"), metadata={"files": json.dumps(meta, sort_keys=True)})
print("wrote", len(tensors), "tensors")
