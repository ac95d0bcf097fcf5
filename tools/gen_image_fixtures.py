#!/usr/bin/env python3
"""Writes the image decoding and resizing fixtures for Tests/SSFDataTests.

Small encoded images (RGB, grayscale, CMYK and progressive JPEG; RGB, RGBA, palette, 16-bit,
interlaced and 1×1 PNG), the
pixels Pillow decodes from them, and Pillow's bicubic/bilinear resizes of a random image, so
the Swift tests can check decoding and resampling without Python.

Pinned: Pillow 13.0.0, pypng 0.20220715.0 (Pillow writes no interlaced PNG), numpy, safetensors
(the venv of tools/gen_engine_fixtures.py):
    ~/venv-torch/bin/python tools/gen_image_fixtures.py
"""
import io
import json
import os

import numpy as np
import png
import PIL
from PIL import Image
from safetensors.numpy import save_file

assert PIL.__version__ == "13.0.0", f"expected Pillow 13.0.0, found {PIL.__version__}"
assert png.__version__ == "0.20220715.0", f"expected pypng 0.20220715.0, found {png.__version__}"
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

# Added later, after every draw above, so the earlier fixtures keep their bytes.
add_encoded("progressive_jpeg", Image.fromarray(base), "JPEG", quality=90, progressive=True)
# Adam7-interlaced, written by pypng; the expected pixels are Pillow's decode of it.
with open(os.path.join(OUT, "interlaced_png.png"), "wb") as f:
    png.Writer(base.shape[1], base.shape[0], greyscale=False, interlace=True).write(f, base.reshape(base.shape[0], -1).tolist())
with open(os.path.join(OUT, "interlaced_png.png"), "rb") as f:
    decoded = Image.open(io.BytesIO(f.read()))
    assert decoded.info.get("interlace") == 1, decoded.info
    tensors["interlaced_png.rgb"] = np.asarray(decoded.convert("RGB")).astype(np.float32)
meta["interlaced_png"] = "interlaced_png.png"
add_encoded("one_pixel_png", Image.fromarray(base[:1, :1]), "PNG")

# Headers that declare 20000×20000 pixels (400 megapixels) in files of a few hundred bytes: the
# decoder must refuse them by their size, before allocating.
import struct, zlib
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
with open(os.path.join(OUT, "huge_header_png.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b""))
buf = io.BytesIO()
Image.fromarray(base).save(buf, "JPEG", quality=90)
jpeg = bytearray(buf.getvalue())
sof = jpeg.index(b"\xff\xc0")
jpeg[sof + 5:sof + 9] = struct.pack(">HH", 20000, 20000)
with open(os.path.join(OUT, "huge_header_jpeg.jpg"), "wb") as f:
    f.write(bytes(jpeg))

save_file(tensors, os.path.join(OUT, "images.safetensors"), metadata={"files": json.dumps(meta, sort_keys=True)})
print("wrote", len(tensors), "tensors")
