"""Coarse-grain the original MNIST IDX files to 7 x 7 and write ``data/mnist7x7/``.

Usage::

    python -m noneq.scripts.make_mnist7x7 --source ../shared/data/mnist --out data/mnist7x7

Each 28 x 28 image is cut into 4 x 4 blocks; the stored value is the *sum* of the 16 uint8
pixels of a block (uint16, exact), so the pixel value used by the course,
block mean / 255 = sum / (16 * 255), lies in [0, 1] and is reproduced bit for bit.
The md5 of the four source files is checked against the official values first.
The output is ``mnist7x7.npz`` (compressed) and ``PROVENANCE.json`` (``noneq.store``: the command,
the source and its checksums, versions, date and the SHA-256 of the npz).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import pathlib
import sys

import numpy as np

from noneq import store

#: what the stored folder holds (PROVENANCE.json)
DESCRIPTION = ("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; distributed under CC BY-SA 3.0) coarse-grained to "
               "7x7 (mean over 4x4 blocks), stored as uint16 block sums; pixel value = block_sum / (16 * 255), "
               "in [0, 1]")

#: md5 of the official MNIST distribution files.
SOURCE_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def read_idx(path: pathlib.Path) -> np.ndarray:
    """Read a gzipped IDX file (big-endian header: magic 2051 images / 2049 labels)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic == 2051:
        n, rows, cols = (int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(3))
        return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        n = int.from_bytes(raw[4:8], "big")
        return np.frombuffer(raw, dtype=np.uint8, offset=8).reshape(n)
    raise ValueError(f"{path}: unknown IDX magic number {magic}.")


def block_sums(images: np.ndarray, block: int = 4) -> np.ndarray:
    """Sum of each ``block x block`` tile: (n, 28, 28) uint8 -> (n, 7, 7) uint16."""
    n, rows, cols = images.shape
    tiles = images.reshape(n, rows // block, block, cols // block, block).astype(np.uint16)
    return tiles.sum(axis=(2, 4), dtype=np.uint16)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="../shared/data/mnist", help="folder with the four IDX .gz files")
    parser.add_argument("--out", default="data/mnist7x7", help="output folder")
    args = parser.parse_args(argv)
    src, out = pathlib.Path(args.source), pathlib.Path(args.out)
    for name, md5 in SOURCE_MD5.items():
        got = hashlib.md5((src / name).read_bytes()).hexdigest()
        if got != md5:
            print(f"error: {src / name} has md5 {got}, expected {md5}", file=sys.stderr)
            return 1
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(src / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(src / f"{prefix}-labels-idx1-ubyte.gz")
        arrays[f"{split}_block_sums"] = block_sums(images)
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    target = store.save(out, arrays, file="mnist7x7.npz",
                        command=f"python -m noneq.scripts.make_mnist7x7 --source {args.source} --out {args.out}",
                        seed=None, keys="none: no random numbers", description=DESCRIPTION,
                        parameters={"source": args.source, "source_md5": SOURCE_MD5})
    digest = store.sha256(target)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
