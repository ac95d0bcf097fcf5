#!/usr/bin/env python3
"""Extracts a class-balanced subset of the CIFAR-10 JPEG ImageFolder tarball
(../shared/data/cifar10-jpeg.tar.gz: train/<class>/NNNN.jpg, test/<class>/NNNN.jpg) into an
ImageFolder directory: the first N files of each class, in name order, per split.

    python3 tools/make_cifar10_subset.py ../shared/data/cifar10-jpeg.tar.gz /tmp/cifar10-2k --train 200 --test 100
"""
import argparse
import os
import tarfile
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("tarball")
ap.add_argument("output")
ap.add_argument("--train", type=int, default=200, help="images per class from train/")
ap.add_argument("--test", type=int, default=100, help="images per class from test/")
args = ap.parse_args()
limits = {"train": args.train, "test": args.test}
with tarfile.open(args.tarball) as tar:
    members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
    taken = defaultdict(int)
    for m in members:
        parts = m.name.split("/")
        split, cls = parts[-3], parts[-2]
        if split not in limits or taken[(split, cls)] >= limits[split]:
            continue
        taken[(split, cls)] += 1
        dest = os.path.join(args.output, split, cls, parts[-1])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(tar.extractfile(m).read())
print(f"wrote {sum(taken.values())} images to {args.output}")
