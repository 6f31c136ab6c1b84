"""The course's data sets, loaded from the repository's ``data/`` folder with checksums.

Two data sets ship with the course (see ``data/README.md`` for provenance):

* the paper's regression set (Sec. 4.1): M = 200 points x_i = -3 + 0.03 (i - 1),
  y_i = exp(-x_i^2) + noise of standard deviation 0.1;
* MNIST coarse-grained to 7 x 7 (Sec. 4.2): each 28 x 28 image averaged over 4 x 4 blocks,
  pixel values in [0, 1]; 60,000 training and 10,000 test images.

Every loader verifies the SHA-256 of the files it reads and raises :class:`DataError`
(a ``ValueError``) naming the file and what to do when a file is missing or corrupt.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from functools import lru_cache

import numpy as np

__all__ = [
    "DataError",
    "data_dir",
    "verify",
    "load_regression",
    "load_mnist7",
    "save_npz",
    "CHECKSUMS",
]

#: SHA-256 of every data file the course reads, relative to ``data/``.
CHECKSUMS = {
    "paper-regression/x_train.txt": "61b6b0c29d6fdb23c630aefdf91f251d8a243731daabe0047f6728681c3c8599",
    "paper-regression/y_train.txt": "ff114a8449dcab460eab2412d572fa9ffc7a1d2be3b2333b4c545b8f068df10a",
    "mnist7x7/mnist7x7.npz": None,  # read from data/mnist7x7/SHA256SUMS, written by the script
}


class DataError(ValueError):
    """A data file is missing, corrupt, or cannot be found."""


def save_npz(path, **arrays) -> pathlib.Path:
    """Write ``arrays`` to a compressed ``.npz`` that ``numpy.load`` reads, byte-for-byte
    the same for the same arrays: unlike ``numpy.savez_compressed`` it stores a fixed file
    date (1980-01-01) in the zip container, so a regenerated data file keeps its SHA-256.
    Arrays are written in the order given. Returns the path."""
    import io
    import zipfile

    path = pathlib.Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    return path


def data_dir() -> pathlib.Path:
    """The repository's ``data/`` folder.

    Looked up, in order: the environment variable ``NONEQ_DATA``; the ``data/`` folder
    beside the (editable-installed) ``lib/`` folder; a ``data/`` folder in the current
    directory or one of its parents.
    """
    env = os.environ.get("NONEQ_DATA")
    if env:
        path = pathlib.Path(env)
        if not path.is_dir():
            raise DataError(f"NONEQ_DATA={env!r} is not a folder.")
        return path
    here = pathlib.Path(__file__).resolve()
    candidates = [here.parents[2] / "data"]
    cwd = pathlib.Path.cwd().resolve()
    candidates += [p / "data" for p in (cwd, *cwd.parents)]
    for path in candidates:
        if (path / "paper-regression").is_dir():
            return path
    raise DataError(
        "Cannot find the course's data/ folder. Run from inside the repository, install the "
        "library with `pip install -e ./lib`, or set NONEQ_DATA to the data/ folder."
    )


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected(rel: str) -> str:
    expected = CHECKSUMS.get(rel)
    if expected is None and rel.startswith("mnist7x7/"):
        sums = data_dir() / "mnist7x7" / "SHA256SUMS"
        if not sums.exists():
            raise DataError(f"{sums} is missing: regenerate with `python -m noneq.scripts.make_mnist7x7`.")
        table = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        expected = table.get(pathlib.Path(rel).name)
    if expected is None:
        raise DataError(f"No checksum is recorded for data file {rel!r}.")
    return expected


def verify(rel: str) -> pathlib.Path:
    """Check that ``data/<rel>`` exists and has its recorded SHA-256; return its path.

    Raises
    ------
    DataError
        if the file is missing or its checksum differs (corrupt or modified file).
    """
    path = data_dir() / rel
    if not path.exists():
        raise DataError(f"Data file {path} is missing. It ships with the repository; restore it with `git checkout -- data/`.")
    got = _sha256(path)
    want = _expected(rel)
    if got != want:
        raise DataError(
            f"Data file {path} is corrupt or modified: sha256 {got[:12]}... differs from the recorded "
            f"{want[:12]}... Restore it with `git checkout -- data/` (or regenerate it, see data/README.md)."
        )
    return path


@lru_cache(maxsize=None)
def load_regression() -> tuple[np.ndarray, np.ndarray]:
    """The paper's regression data set (Sec. 4.1, Fig. 1A).

    Returns
    -------
    x, y : ndarray, shape (200,)
        inputs x_i = -3 + 0.03 (i - 1) and noisy targets y_i = exp(-x_i^2) + noise.
    """
    x = np.loadtxt(verify("paper-regression/x_train.txt"))
    y = np.loadtxt(verify("paper-regression/y_train.txt"))
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@lru_cache(maxsize=None)
def load_mnist7(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST coarse-grained to 7 x 7 (Sec. 4.2).

    Parameters
    ----------
    split : {"train", "test"}

    Returns
    -------
    images : ndarray, shape (60000, 49) for train or (10000, 49) for test, float64 in [0, 1]
        the mean of each 4 x 4 block of the original 28 x 28 image divided by 255,
        flattened row-major (pixel p = 7 * row + column).
    labels : ndarray of int64, shape (60000,) or (10000,), digits 0..9.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    with np.load(verify("mnist7x7/mnist7x7.npz")) as f:
        sums = f[f"{split}_block_sums"]
        labels = f[f"{split}_labels"].astype(np.int64)
    images = sums.reshape(len(sums), 49).astype(np.float64) / (16.0 * 255.0)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
