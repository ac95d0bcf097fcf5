#!/usr/bin/env python3
"""Writes the corruption fixtures for Tests/SSFDataTests (CorruptionTests.swift).

Three synthetic 48×48 RGB images (gradients, shapes, texture), the random fields of the random
corruptions drawn with NumPy, and each corruption's output at severities 1, 3 and 5 computed by an
independent NumPy / SciPy / Pillow implementation of the definitions in Sources/SSFData/Corruptions.swift
(ImageNet-C, Hendrycks & Dietterich 2019, parameters from its make_imagenet_c.py; spatial parameters
scaled by min(width, height)/224). The Swift tests apply Sources/SSFData/Corruptions.swift to the same
images with the same fields and compare.

Pinned: numpy 2.4.6, Pillow 13.0.0, scipy 1.17.1, safetensors 0.8.0 (the venv of tools/gen_engine_fixtures.py
with `pip install scipy==1.17.1`):
    ~/venv-torch/bin/python tools/gen_corruption_fixtures.py
"""
import io
import json
import os

import numpy as np
import PIL
import scipy
import safetensors
from PIL import Image
from safetensors.numpy import save_file
from scipy import ndimage, stats

assert np.__version__ == "2.4.6", f"expected numpy 2.4.6, found {np.__version__}"
assert PIL.__version__ == "13.0.0", f"expected Pillow 13.0.0, found {PIL.__version__}"
assert scipy.__version__ == "1.17.1", f"expected scipy 1.17.1, found {scipy.__version__}"
assert safetensors.__version__ == "0.8.0", f"expected safetensors 0.8.0, found {safetensors.__version__}"

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SSFDataTests", "Fixtures")
SIDE = 48
SEVERITIES = [1, 3, 5]
rng = np.random.default_rng(2019)


# ---------------------------------------------------------------------------- images

def synthetic(kind):
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    if kind == 0:  # diagonal colour gradient, a disc, a bar, fine noise texture
        img = np.stack([x / SIDE * 230 + 10, y / SIDE * 200 + 30, (x + y) / (2 * SIDE) * 120 + 60], -1)
        img[(x - 30) ** 2 + (y - 18) ** 2 < 90] = [240, 60, 40]
        img[30:38, 6:40] = [20, 40, 160]
    elif kind == 1:  # dark scene, checkerboard texture, bright square
        img = np.stack([30 + 20 * np.sin(x / 3), 40 + 20 * np.cos(y / 4), 50 + 0 * x], -1)
        img += 25 * (((x // 4 + y // 4) % 2) - 0.5)[..., None]
        img[8:22, 24:40] = [250, 245, 230]
    else:  # saturated stripes, a ring, a greyish corner
        img = np.stack([128 + 120 * np.sin(x / 5), 128 + 120 * np.sin(x / 5 + 2), 128 + 120 * np.sin(x / 5 + 4)], -1)
        r = np.sqrt((x - 24) ** 2 + (y - 24) ** 2)
        img[(r > 10) & (r < 15)] = [255, 255, 0]
        img[36:, 36:] = [120, 125, 130]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def to_u8(x):
    """Clip to [0, 1], times 255, truncate (the published script's np.uint8)."""
    return np.uint8(np.clip(x, 0, 1) * 255)


# ---------------------------------------------------------------------------- corruptions

S = SIDE / 224


def gaussian_noise(img, field, sev):
    sigma = [0.08, 0.12, 0.18, 0.26, 0.38][sev - 1]
    return to_u8(img / 255.0 + sigma * field.astype(np.float64))


def shot_noise(img, field, sev):
    c = [60, 25, 12, 5, 3][sev - 1]
    lam = img / 255.0 * c
    u = field.astype(np.float64)
    safe = np.where(lam > 0, lam, 1.0)
    k = stats.poisson.ppf(u, safe)
    k = np.where((lam == 0) | (u == 0), 0, k)
    return to_u8(k / c)


def impulse_noise(img, field, sev):
    a = [0.03, 0.06, 0.09, 0.17, 0.27][sev - 1]
    u = field.astype(np.float32)
    x = img / 255.0
    x = np.where(u < np.float32(a / 2), 1.0, np.where(u < np.float32(a), 0.0, x))
    return np.uint8(np.rint(x * 255))


def gaussian_taps(sigma, n):
    t = np.exp(-((np.arange(n) - n // 2) ** 2) / (2 * sigma * sigma))
    return t / t.sum()


def correlate_reflect101(plane, kernel):
    """2-D correlation, borders reflected without repeating the edge (numpy 'reflect')."""
    k = kernel.shape[0]
    r = k // 2
    p = np.pad(plane, r, mode="reflect")
    out = np.zeros_like(plane)
    for dy in range(k):
        for dx in range(k):
            if kernel[dy, dx] != 0:
                out = out + kernel[dy, dx] * p[dy:dy + plane.shape[0], dx:dx + plane.shape[1]]
    return out


def defocus_blur(img, field, sev):
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][sev - 1]
    radius *= S
    small = radius <= 8 * S
    half = int(np.ceil(8 * S)) if small else int(np.ceil(radius))
    L = np.arange(-half, half + 1)
    X, Y = np.meshgrid(L, L)
    disk = ((X ** 2 + Y ** 2) <= radius ** 2).astype(np.float32)
    disk /= disk.sum()
    g = gaussian_taps(alias, 3 if small else 5).astype(np.float32)
    # separable smoothing of the disk: rows, then columns
    t = len(g)
    padded = np.pad(disk, ((0, 0), (t // 2, t // 2)), mode="reflect")
    rows = sum(g[i] * padded[:, i:i + disk.shape[1]] for i in range(t))
    padded = np.pad(rows, ((t // 2, t // 2), (0, 0)), mode="reflect")
    kernel = sum(g[i] * padded[i:i + disk.shape[0], :] for i in range(t))
    x = img.astype(np.float32) / 255
    out = np.stack([correlate_reflect101(x[..., c], kernel) for c in range(3)], -1)
    return to_u8(out)


def motion_blur(img, field, sev):
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][sev - 1]
    radius, sigma = radius * S, sigma * S
    theta = np.deg2rad(float(field[0]))
    width = 2 * int(np.ceil(radius)) + 1
    i = np.arange(width)
    w = np.exp(-(i ** 2) / (2 * sigma * sigma))
    w /= w.sum()
    dxs = np.floor(i * np.cos(theta) + 0.5).astype(int)
    dys = np.floor(-i * np.sin(theta) + 0.5).astype(int)
    x = img.astype(np.float32) / 255
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    out = np.zeros_like(x)
    for wt, dx, dy in zip(w, dxs, dys):
        out += np.float32(wt) * x[np.clip(yy + dy, 0, SIDE - 1), np.clip(xx + dx, 0, SIDE - 1)]
    return to_u8(out)


def clipped_zoom(x, z):
    h = x.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    zoomed = ndimage.zoom(x[top:top + ch, top:top + ch], (z, z, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim:trim + h, trim:trim + h]


def zoom_blur(img, field, sev):
    factors = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
               np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)][sev - 1]
    x = (img / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for z in factors:
        out += clipped_zoom(x, z)
    return to_u8((x + out) / (len(factors) + 1))


def rgb2hsv(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = v - rgb.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0, delta / v)
        h = np.where(b == v, 4 + (r - g) / delta, np.where(g == v, 2 + (b - r) / delta, (g - b) / delta))
    h = np.where(delta == 0, 0, (h / 6) % 1)
    return h, s, v


def hsv2rgb(h, s, v):
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    hi = hi.astype(int) % 6
    choices = [np.stack(c, -1) for c in [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]]
    out = np.zeros(h.shape + (3,))
    for k in range(6):
        out = np.where((hi == k)[..., None], choices[k], out)
    return out


def brightness(img, field, sev):
    c = [0.1, 0.2, 0.3, 0.4, 0.5][sev - 1]
    h, s, v = rgb2hsv(img / 255.0)
    return to_u8(hsv2rgb(h, s, np.clip(v + c, 0, 1)))


def saturate(img, field, sev):
    gain, off = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][sev - 1]
    h, s, v = rgb2hsv(img / 255.0)
    return to_u8(hsv2rgb(h, np.clip(s * gain + off, 0, 1), v))


def contrast(img, field, sev):
    c = [0.4, 0.3, 0.2, 0.1, 0.05][sev - 1]
    x = img / 255.0
    m = x.mean(axis=(0, 1), keepdims=True)
    return to_u8((x - m) * c + m)


def pixelate(img, field, sev):
    c = [0.6, 0.5, 0.4, 0.3, 0.25][sev - 1]
    im = Image.fromarray(img)
    im = im.resize((int(SIDE * c), int(SIDE * c)), Image.BOX).resize((SIDE, SIDE), Image.BOX)
    return np.asarray(im)


def jpeg_compression(img, field, sev):
    q = [25, 18, 15, 10, 7][sev - 1]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def fold101(i, n):
    period = 2 * n - 2
    m = np.mod(i, period)
    return np.where(m < n, m, period - m)


def elastic_transform(img, field, sev):
    table = [(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)]
    alpha, sigma, jitter = (244 * v * S for v in table[sev - 1])
    h = w = SIDE
    f = field.astype(np.float64)
    cx, cy, sq = w // 2, h // 2, min(w, h) // 3
    src = np.array([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]], dtype=np.float64)
    dst = src + jitter * f[:6].reshape(3, 2)
    A = np.concatenate([src, np.ones((3, 1))], 1)
    M = np.linalg.solve(A, dst).T  # 2×3 forward map
    inv = np.linalg.inv(np.vstack([M, [0, 0, 1]]))[:2]
    x = img.astype(np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    fx, fy = np.floor(sx), np.floor(sy)
    tx, ty = (sx - fx).astype(np.float32)[..., None], (sy - fy).astype(np.float32)[..., None]
    x0, x1 = fold101(fx.astype(int), w), fold101(fx.astype(int) + 1, w)
    y0, y1 = fold101(fy.astype(int), h), fold101(fy.astype(int) + 1, h)
    top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * tx
    bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * tx
    warped = top + (bottom - top) * ty
    n = h * w
    dx = (ndimage.gaussian_filter(f[6:6 + n].reshape(h, w), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (ndimage.gaussian_filter(f[6 + n:].reshape(h, w), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    out = np.stack([ndimage.map_coordinates(warped[..., c].astype(np.float64), [yy + dy, xx + dx], order=1, mode="reflect")
                    for c in range(3)], -1)
    return to_u8(out.astype(np.float32))


def plasma(u, decay, n=256):
    u = u.astype(np.float64).reshape(n, n)
    m = np.zeros((n, n))
    step, wibble = n, 100.0
    while step >= 2:
        half = step // 2
        corners = m[0::step, 0::step]
        m[half::step, half::step] = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1)
                                     + np.roll(np.roll(corners, -1, 0), -1, 1)) / 4 + wibble ** 2 * u[half::step, half::step]
        centres = m[half::step, half::step]
        # edge midpoints on the corner rows: centres above and below, corners left and right
        m[0::step, half::step] = (centres + np.roll(centres, 1, 0) + corners + np.roll(corners, -1, 1)) / 4 \
            + wibble ** 2 * u[0::step, half::step]
        # edge midpoints on the centre rows: centres left and right, corners above and below
        m[half::step, 0::step] = (centres + np.roll(centres, 1, 1) + corners + np.roll(corners, -1, 0)) / 4 \
            + wibble ** 2 * u[half::step, 0::step]
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def fog(img, field, sev):
    t, decay = [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)][sev - 1]
    m = plasma(field, decay)
    c = (np.arange(SIDE) + 0.5) / S - 0.5
    f = np.floor(c)
    i0 = f.astype(int) % 256
    i1 = (i0 + 1) % 256
    w = c - f
    rows = m[i0] * (1 - w)[:, None] + m[i1] * w[:, None]
    sampled = rows[:, i0] * (1 - w)[None, :] + rows[:, i1] * w[None, :]
    x = img / 255.0
    mx = x.max()
    return to_u8((x + t * sampled[..., None]) * mx / (mx + t))


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur, "fog": fog,
    "brightness": brightness, "contrast": contrast, "elastic_transform": elastic_transform,
    "pixelate": pixelate, "jpeg_compression": jpeg_compression, "saturate": saturate,
}


def field_for(name, k):
    """The random field, stored as float16; the expected outputs use exactly the stored values."""
    if name == "gaussian_noise":
        f = rng.standard_normal((SIDE, SIDE, 3))
    elif name in ("shot_noise", "impulse_noise"):
        f = rng.random((SIDE, SIDE, 3))
    elif name == "motion_blur":
        f = rng.uniform(-45, 45, (1,))
    elif name == "elastic_transform":
        f = rng.uniform(-1, 1, (6 + 2 * SIDE * SIDE,))
    else:
        return None
    return half(f)


def half(f):
    """float16, uniforms kept below 1 as our generator's are (rounding could reach 1.0)."""
    return np.minimum(f.astype(np.float16), np.nextafter(np.float16(1), np.float16(0)))


def main():
    tensors, meta = {}, {"side": SIDE, "severities": SEVERITIES, "images": 3}
    images = [synthetic(k) for k in range(3)]
    fog_field = half(rng.uniform(-1, 1, (256 * 256,)))
    tensors["field.fog"] = fog_field
    for k, img in enumerate(images):
        tensors[f"image.{k}"] = img
        for name, fn in CORRUPTIONS.items():
            field = fog_field if name == "fog" else field_for(name, k)
            if field is not None and name != "fog":
                tensors[f"field.{name}.{k}"] = field
            for sev in SEVERITIES:
                out = fn(img, field, sev)
                assert out.shape == img.shape and out.dtype == np.uint8, (name, out.shape, out.dtype)
                tensors[f"expected.{name}.{sev}.{k}"] = np.ascontiguousarray(out)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "corruptions.safetensors")
    save_file(tensors, path, metadata={"fixture": json.dumps(meta, sort_keys=True)})
    print("wrote", len(tensors), "tensors,", os.path.getsize(path), "bytes to", os.path.normpath(path))


if __name__ == "__main__":
    main()
