#!/usr/bin/env python3
"""Writes tiny dataset samples and transform references for Tests/SSFDataTests.

Datasets (Fixtures/datasets/): ImageFolder, list file, VTAB-1k, CUB-200-2011, NABirds, Stanford
Dogs (.mat via scipy.io.savemat, compressed and not), CIFAR-10/100 python pickles (a Python-2
style stream with BINSTRING bytes, and a Python-3 protocol-2 stream) and binary files, MNIST /
Fashion-MNIST IDX (gzip'd and plain), plus `expected.json` with what each split must contain.

Transforms (Fixtures/transforms.safetensors): Pillow ops as timm's RandAugment applies them at fixed
magnitudes, torchvision resized crops with fixed boxes, flips, VTAB direct resize.

Pinned: Pillow 13.0.0, numpy, scipy, torch 2.5.1, torchvision, timm 1.0.11, safetensors:
    ~/venv-torch/bin/python tools/gen_dataset_fixtures.py
"""
import gzip
import json
import os
import pickle
import shutil
import struct

import numpy as np
import PIL
import scipy.io
from PIL import Image

assert PIL.__version__ == "13.0.0", f"expected Pillow 13.0.0, found {PIL.__version__}"
HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "Tests", "SSFDataTests", "Fixtures")
OUT = os.path.join(FIX, "datasets")
shutil.rmtree(OUT, ignore_errors=True)
rng = np.random.default_rng(11)
expected = {}


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def image(rel, w=6, h=5):
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    fmt = "PNG" if rel.endswith(".png") else "JPEG"
    Image.fromarray(arr).save(path(rel), fmt, quality=90)
    return rel


def write(rel, data, mode="w"):
    with open(path(rel), mode) as f:
        f.write(data)


# ImageFolder: sorted classes, sorted files, non-images ignored; a second root with a corrupt file.
for rel in ["folder/train/dog/b.png", "folder/train/dog/a.jpg", "folder/train/cat/z.jpeg", "folder/test/cat/c.png",
            "folder/test/dog/d.jpg"]:
    image(rel)
write("folder/train/cat/notes.txt", "not an image\n")
expected["imagefolder|folder|train"] = {"classes": ["cat", "dog"], "labels": [0, 1, 1],
                                        "files": ["folder/train/cat/z.jpeg", "folder/train/dog/a.jpg", "folder/train/dog/b.png"]}
expected["|folder|test"] = {"classes": ["cat", "dog"], "labels": [0, 1], "files": ["folder/test/cat/c.png", "folder/test/dog/d.jpg"]}
image("bad/train/x/good.png")
write("bad/train/x/broken.jpg", b"\xff\xd8\xff\xe0 truncated", "wb")

# Generic list file (paths with a space) and VTAB-1k.
image("list/my images/p.jpg")
image("list/q.png")
write("list/labels.txt", "my images/p.jpg 2\nq.png 0\n")
expected["list|list/labels.txt|"] = {"classes": ["0", "1", "2"], "labels": [2, 0], "files": ["list/my images/p.jpg", "list/q.png"]}
for i in range(4):
    image(f"vtab/dtd/images/im{i}.jpg")
write("vtab/dtd/train800.txt", "images/im0.jpg 0\nimages/im1.jpg 3\n")
write("vtab/dtd/val200.txt", "images/im2.jpg 1\n")
write("vtab/dtd/train800val200.txt", "images/im0.jpg 0\nimages/im1.jpg 3\nimages/im2.jpg 1\n")
write("vtab/dtd/test.txt", "images/im3.jpg 4\n")
expected["vtab|vtab/dtd|train"] = {"classes": [str(i) for i in range(5)], "labels": [0, 3, 1],
                                   "files": ["vtab/dtd/images/im0.jpg", "vtab/dtd/images/im1.jpg", "vtab/dtd/images/im2.jpg"]}
expected["|vtab/dtd|val"] = {"classes": [str(i) for i in range(5)], "labels": [1], "files": ["vtab/dtd/images/im2.jpg"]}
expected["|vtab/dtd|test"] = {"classes": [str(i) for i in range(5)], "labels": [4], "files": ["vtab/dtd/images/im3.jpg"]}

# CUB-200-2011 (1-based dense class ids) and NABirds (sparse ids, uuid image ids).
cub = [("1", "001.Albatross/a_1.jpg", 1, 1), ("2", "001.Albatross/a_2.jpg", 1, 0), ("3", "002.Auklet/b_1.jpg", 2, 1)]
for _, rel, _, _ in cub:
    image("cub/CUB_200_2011/images/" + rel)
write("cub/CUB_200_2011/images.txt", "".join(f"{i} {r}\n" for i, r, _, _ in cub))
write("cub/CUB_200_2011/image_class_labels.txt", "".join(f"{i} {c}\n" for i, _, c, _ in cub))
write("cub/CUB_200_2011/train_test_split.txt", "".join(f"{i} {t}\n" for i, _, _, t in cub))
write("cub/CUB_200_2011/classes.txt", "1 001.Albatross\n2 002.Auklet\n")
expected["cub|cub/CUB_200_2011|train"] = {"classes": ["001.Albatross", "002.Auklet"], "labels": [0, 1],
                                          "files": ["cub/CUB_200_2011/images/001.Albatross/a_1.jpg", "cub/CUB_200_2011/images/002.Auklet/b_1.jpg"]}
expected["|cub/CUB_200_2011|test"] = {"classes": ["001.Albatross", "002.Auklet"], "labels": [0],
                                     "files": ["cub/CUB_200_2011/images/001.Albatross/a_2.jpg"]}
nab = [("0a1b-22", "0295/x1.jpg", 295, 1), ("9f-03", "1000/y1.jpg", 1000, 1), ("c4-7e", "0017/z1.jpg", 17, 0)]
for _, rel, _, _ in nab:
    image("nabirds/images/" + rel)
write("nabirds/images.txt", "".join(f"{i} {r}\n" for i, r, _, _ in nab))
write("nabirds/image_class_labels.txt", "".join(f"{i} {c}\n" for i, _, c, _ in nab))
write("nabirds/train_test_split.txt", "".join(f"{i} {t}\n" for i, _, _, t in nab))
write("nabirds/classes.txt", "0 Birds\n17 Common Loon\n295 Wood Duck\n1000 House Sparrow (Female)\n")
write("nabirds/hierarchy.txt", "17 0\n295 0\n1000 0\n")
expected["|nabirds|train"] = {"classes": ["Common Loon", "Wood Duck", "House Sparrow (Female)"], "labels": [1, 2],
                             "files": ["nabirds/images/0295/x1.jpg", "nabirds/images/1000/y1.jpg"]}

# Stanford Dogs: MATLAB v5 cell arrays of paths and 1-based double labels.
dogs = {"train": [("n02085620-Chihuahua/n02085620_1.jpg", 1), ("n02085782-Japanese_spaniel/n02085782_2.jpg", 2)],
        "test": [("n02085782-Japanese_spaniel/n02085782_3.jpg", 2)]}
for split, rows in dogs.items():
    for rel, _ in rows:
        image("dogs/Images/" + rel)
    files = np.empty((len(rows), 1), dtype=object)
    for k, (rel, _) in enumerate(rows):
        files[k, 0] = np.array([rel])
    labels = np.array([[float(l)] for _, l in rows])
    scipy.io.savemat(path(f"dogs/{split}_list.mat"), {"file_list": files, "labels": labels,
                                                      "annotation_list": files}, do_compression=(split == "train"))
    with open(path(f"dogs/{split}_list.mat"), "r+b") as f:  # a fixed header text (scipy writes the date)
        f.write(b"MATLAB 5.0 MAT-file, written by tools/gen_dataset_fixtures.py".ljust(116))
expected["dogs|dogs|train"] = {"classes_prefix": ["Chihuahua", "Japanese_spaniel"], "class_count": 120, "labels": [0, 1],
                               "files": ["dogs/Images/" + r for r, _ in dogs["train"]]}
expected["|dogs|test"] = {"class_count": 120, "labels": [1], "files": ["dogs/Images/" + dogs["test"][0][0]]}


# The Flowers and Cars images draw from their own generator, so the samples after them stay as they were.
fgvc_rng = np.random.default_rng(102)


def fgvc_image(rel):
    Image.fromarray(fgvc_rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).save(path(rel), "JPEG", quality=90)


def fixed_header(rel):
    with open(path(rel), "r+b") as f:  # a fixed header text (scipy writes the date)
        f.write(b"MATLAB 5.0 MAT-file, written by tools/gen_dataset_fixtures.py".ljust(116))


# Oxford Flowers-102: imagelabels.mat (1-based labels of jpg/image_NNNNN.jpg, 1×N double) and setid.mat
# (trnid, valid, tstid: 1-based image numbers, 1×k double), as the dataset ships them.
flower_labels = [3, 1, 102, 1, 3, 2]
for i in range(1, len(flower_labels) + 1):
    fgvc_image(f"flowers/jpg/image_{i:05d}.jpg")
scipy.io.savemat(path("flowers/imagelabels.mat"), {"labels": np.array([flower_labels], dtype=np.float64)})
fixed_header("flowers/imagelabels.mat")
scipy.io.savemat(path("flowers/setid.mat"), {"trnid": np.array([[2, 1]], dtype=np.float64), "valid": np.array([[5]], dtype=np.float64),
                                             "tstid": np.array([[6, 3, 4]], dtype=np.float64)}, do_compression=True)
fixed_header("flowers/setid.mat")
expected["flowers102|flowers|train"] = {"class_count": 102, "classes_prefix": ["1", "2", "3"], "labels": [0, 2],
                                        "files": ["flowers/jpg/image_00002.jpg", "flowers/jpg/image_00001.jpg"]}
expected["|flowers|val"] = {"class_count": 102, "labels": [2], "files": ["flowers/jpg/image_00005.jpg"]}
expected["|flowers|test"] = {"class_count": 102, "labels": [1, 101, 0],
                             "files": ["flowers/jpg/image_00006.jpg", "flowers/jpg/image_00003.jpg", "flowers/jpg/image_00004.jpg"]}

# Stanford Cars: cars_annos.mat, a 1×N struct array `annotations` (relative_im_path, bbox_x1, bbox_y1,
# bbox_x2, bbox_y2, class (1-based), test (0 or 1)) and the cell array `class_names`, over car_ims/.
car_rows = [("car_ims/000001.jpg", 1, 0), ("car_ims/000002.jpg", 3, 1), ("car_ims/000003.jpg", 2, 0), ("car_ims/000004.jpg", 1, 1)]
for rel, _, _ in car_rows:
    fgvc_image("cars/" + rel)
annotations = np.zeros((1, len(car_rows)), dtype=[("relative_im_path", "O"), ("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"),
                                                   ("bbox_y2", "O"), ("class", "O"), ("test", "O")])
for k, (rel, cls, test) in enumerate(car_rows):
    annotations[0, k] = (np.array([rel]), np.array([[1.0]]), np.array([[2.0]]), np.array([[5.0]]), np.array([[4.0]]),
                         np.array([[cls]], dtype=np.uint8), np.array([[test]], dtype=np.uint8))
class_names = np.empty((1, 3), dtype=object)
for k, name in enumerate(["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]):
    class_names[0, k] = np.array([name])
scipy.io.savemat(path("cars/cars_annos.mat"), {"annotations": annotations, "class_names": class_names})
fixed_header("cars/cars_annos.mat")
expected["stanford-cars|cars|train"] = {"classes": ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"],
                                        "labels": [0, 1], "files": ["cars/car_ims/000001.jpg", "cars/car_ims/000003.jpg"]}
expected["|cars|test"] = {"classes": ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"],
                          "labels": [2, 0], "files": ["cars/car_ims/000002.jpg", "cars/car_ims/000004.jpg"]}


# CIFAR: pixel records are planar R, G, B of 32×32.
def records(n):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def pixel_expectation(recs, labels, classes):
    # Per record: the RGB of pixel (row 3, column 5) and the sum of all values.
    rgb = recs.reshape(-1, 3, 32, 32)
    return {"labels": [int(l) for l in labels], "classes_prefix": classes[:3], "class_count": len(classes),
            "probe": [[int(v) for v in r[:, 3, 5]] for r in rgb], "probe_at": [3, 5], "sums": [int(r.sum()) for r in recs]}


class Py2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2's str opcodes (SHORT_BINSTRING / BINSTRING), as the original CIFAR files
    have (including the numpy dtype code 'u1')."""

    def save_bytes(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[bytes] = save_bytes
    dispatch[str] = save_bytes


def py2_dump(obj, rel):
    with open(path(rel), "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


c10 = [f"class{i}".encode() for i in range(10)]
b1, b2, tb = records(2), records(1), records(2)
l1, l2, lt = [3, 9], [0], [1, 2]
py2_dump({b"batch_label": b"training batch 1 of 5", b"labels": l1, b"data": b1, b"filenames": [b"a.png", b"b.png"]}, "cifar-10-batches-py/data_batch_1")
py2_dump({b"batch_label": b"training batch 2 of 5", b"labels": l2, b"data": b2, b"filenames": [b"c.png"]}, "cifar-10-batches-py/data_batch_2")
py2_dump({b"batch_label": b"testing batch 1 of 1", b"labels": lt, b"data": tb, b"filenames": [b"d.png", b"e.png"]}, "cifar-10-batches-py/test_batch")
py2_dump({b"label_names": c10, b"num_cases_per_batch": 10000, b"num_vis": 3072}, "cifar-10-batches-py/batches.meta")
names10 = [c.decode() for c in c10]
expected["cifar10|cifar-10-batches-py|train"] = pixel_expectation(np.concatenate([b1, b2]), l1 + l2, names10)
expected["|cifar-10-batches-py|test"] = pixel_expectation(tb, lt, names10)
write("cifar-10-batches-bin/data_batch_1.bin", b"".join(bytes([l]) + r.tobytes() for l, r in zip(l1, b1)), "wb")
write("cifar-10-batches-bin/test_batch.bin", b"".join(bytes([l]) + r.tobytes() for l, r in zip(lt, tb)), "wb")
write("cifar-10-batches-bin/batches.meta.txt", "\n".join(names10) + "\n\n")
expected["cifar10|cifar-10-batches-bin|train"] = pixel_expectation(b1, l1, names10)

c100 = [f"fine{i}" for i in range(100)]
tr, te = records(3), records(1)
fl, cl, flt, clt = [5, 99, 0], [1, 19, 0], [42], [7]
with open(path("cifar-100-python/train"), "wb") as f:
    pickle.dump({"filenames": ["a", "b", "c"], "fine_labels": fl, "coarse_labels": cl, "data": tr}, f, protocol=2)
with open(path("cifar-100-python/test"), "wb") as f:
    pickle.dump({"filenames": ["d"], "fine_labels": flt, "coarse_labels": clt, "data": te}, f, protocol=2)
with open(path("cifar-100-python/meta"), "wb") as f:
    pickle.dump({"fine_label_names": c100, "coarse_label_names": [f"coarse{i}" for i in range(20)]}, f, protocol=2)
expected["cifar100|cifar-100-python|train"] = pixel_expectation(tr, fl, c100)
expected["|cifar-100-python|test"] = pixel_expectation(te, flt, c100)
write("cifar-100-binary/train.bin", b"".join(bytes([c, l]) + r.tobytes() for c, l, r in zip(cl, fl, tr)), "wb")
write("cifar-100-binary/fine_label_names.txt", "\n".join(c100) + "\n")
expected["|cifar-100-binary|train"] = pixel_expectation(tr, fl, c100)
write("cifar-bad/data_batch_1", pickle.dumps({"data": __import__("collections").OrderedDict()}, protocol=2), "wb")


# MNIST / Fashion-MNIST IDX: train gzip'd, test plain; 7 rows × 5 columns.
def idx(arr):
    return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


for folder, fashion in [("mnist", False), ("fashion-mnist", True)]:
    tr_im, te_im = rng.integers(0, 256, (3, 7, 5), dtype=np.uint8), rng.integers(0, 256, (1, 7, 5), dtype=np.uint8)
    tr_l, te_l = np.array([7, 0, 9], dtype=np.uint8), np.array([4], dtype=np.uint8)
    write(f"{folder}/train-images-idx3-ubyte.gz", gzip.compress(idx(tr_im), mtime=0), "wb")
    write(f"{folder}/train-labels-idx1-ubyte.gz", gzip.compress(idx(tr_l), mtime=0), "wb")
    write(f"{folder}/t10k-images-idx3-ubyte", idx(te_im), "wb")
    write(f"{folder}/t10k-labels-idx1-ubyte", idx(te_l), "wb")
    for split, ims, ls in [("train", tr_im, tr_l), ("test", te_im, te_l)]:
        expected[f"{folder}|{folder}|{split}"] = {"labels": [int(v) for v in ls], "class_count": 10,
                                         "classes_prefix": ["T-shirt/top", "Trouser", "Pullover"] if fashion else ["0", "1", "2"],
                                         "gray_probe": [int(im[3, 2]) for im in ims], "probe_at": [3, 2], "size": [5, 7]}

with open(os.path.join(OUT, "expected.json"), "w") as f:
    # Keys are FORMAT|PATH|SPLIT (empty FORMAT: detected); the tests make PATH absolute.
    json.dump(expected, f, indent=1, sort_keys=True)
print("datasets:", sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns), "bytes")


# ---- Transform references (Fixtures/transforms.safetensors) ----
import random  # noqa: E402

import timm  # noqa: E402
import timm.data.auto_augment as aa  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from timm.data.mixup import Mixup  # noqa: E402

assert timm.__version__ == "1.0.11", timm.__version__
tensors, meta = {}, {}
yy, xx = np.mgrid[0:13, 0:17]
src = np.stack([xx * 15, yy * 20, (xx * yy) % 256], -1)
src = np.clip(src + rng.integers(-30, 30, src.shape), 0, 255).astype(np.uint8)
tensors["source"] = src
source = Image.fromarray(src)

# RandAugment ops at fixed magnitudes; the random sign of signed levels is forced through random.random.
ops = []
for name in aa._RAND_INCREASING_TRANSFORMS + ["Posterize", "Solarize", "Color", "Contrast", "Brightness", "Sharpness"]:
    geometric = name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
    for m in (3, 9):
        for sign, forced in ((1, 0.0), (-1, 1.0)):
            for filt, pil in ((("bilinear", Image.BILINEAR), ("nearest", Image.NEAREST), ("bicubic", Image.BICUBIC)) if geometric else (("none", Image.BILINEAR),)):
                op = aa.AugmentOp(name, prob=1.0, magnitude=m, hparams={"img_mean": (128, 128, 128), "interpolation": pil, "translate_pct": 0.45})
                saved = aa.random.random
                aa.random.random = lambda: forced
                try:
                    out = op(source)
                finally:
                    aa.random.random = saved
                key = f"op.{name}.{m}.{sign}.{filt}"
                tensors[key] = np.asarray(out)
                ops.append(key)
meta["ops"] = ops

# Resized crops with fixed boxes (torchvision resized_crop on PIL), and the fallback box.
crops = [(2, 3, 10, 11, 8, "bilinear"), (0, 0, 13, 17, 12, "bicubic"), (5, 1, 7, 7, 20, "bilinear")]
for top, left, h, w, size, interp in crops:
    mode = T.InterpolationMode.BILINEAR if interp == "bilinear" else T.InterpolationMode.BICUBIC
    out = TF.resized_crop(source, top, left, h, w, [size, size], interpolation=mode)
    tensors[f"crop.{top}.{left}.{h}.{w}.{size}.{interp}"] = np.asarray(out)
meta["crops"] = [list(c) for c in crops]
fallback = []
for w, h in [(40, 10), (10, 40), (20, 18)]:
    i, j, ch, cw = T.RandomResizedCrop.get_params(Image.new("RGB", (w, h)), scale=[2.0, 3.0], ratio=[3 / 4, 4 / 3])
    fallback.append([w, h, j, i, cw, ch])
meta["fallback"] = fallback

# VTAB direct resize + ToTensor + Normalize (ImageNet mean/std).
vtab = T.Compose([T.Resize((12, 12), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                  T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
tensors["vtab.12"] = vtab(source).numpy()

# Mixup / CutMix with fixed λ and CutMix centre: images, mixed images and targets.
x = torch.from_numpy(rng.standard_normal((4, 3, 6, 5)).astype(np.float32))
y = torch.tensor([0, 2, 1, 4])
tensors["mix.x"] = x.numpy()
for kind, lam, center in (("mixup", 0.7, None), ("cutmix", 0.6, (2, 3)), ("cutmix", 0.2, (5, 0))):
    mix = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=5)
    mix._params_per_batch = lambda lam=lam, kind=kind: (lam, kind == "cutmix")
    saved = np.random.randint
    if center:
        calls = iter(center)
        np.random.randint = lambda *a, **k: next(calls)
    try:
        xm = x.clone()
        xm, target = mix(xm, y.clone())
    finally:
        np.random.randint = saved
    key = f"mix.{kind}.{lam}.{center[0] if center else 0}.{center[1] if center else 0}"
    tensors[key + ".x"] = xm.numpy()
    tensors[key + ".targets"] = target.numpy()
meta["mix"] = [k[:-2] for k in tensors if k.startswith("mix.") and k.endswith(".x") and k != "mix.x"]
save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.path.join(FIX, "transforms.safetensors"),
          metadata={k: json.dumps(v) for k, v in meta.items()})
print("transforms:", os.path.getsize(os.path.join(FIX, "transforms.safetensors")), "bytes")
