"""The course's data sets, loaded from the repository's ``data/`` folder with checksums.

Two data sets ship with the course (see ``data/README.md`` for provenance):

* the paper's regression set (Sec. 4.1): M = 200 points x_i = -3 + 0.03 (i - 1),
  y_i = exp(-x_i^2) + noise of standard deviation 0.1;
* MNIST coarse-grained to 7 x 7 (Sec. 4.2): each 28 x 28 image averaged over 4 x 4 blocks,
  pixel values in [0, 1]; 60,000 training and 10,000 test images.

Both are stored results of ``noneq.store`` (``data/paper-regression``, ``data/mnist7x7``): every
loader verifies the SHA-256 recorded in the folder's PROVENANCE.json and raises :class:`DataError`
(a ``ValueError``) naming the file, what is wrong and what to do when a file is missing or corrupt.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import store
from .store import DataError, data_dir, save_npz  # noqa: F401  (the names of this module before noneq.store)

# DataError, data_dir and save_npz are noneq.store's (importable from here too; documented there)
__all__ = [
    "load_regression",
    "load_mnist7",
]

#: what restores or regenerates each data set (named by errors when its PROVENANCE.json is unreadable)
RESTORE_REGRESSION = "git checkout -- data/paper-regression"
MAKE_MNIST7 = "python -m noneq.scripts.make_mnist7x7 --source ../shared/data/mnist --out data/mnist7x7"


@lru_cache(maxsize=None)
def load_regression() -> tuple[np.ndarray, np.ndarray]:
    """The paper's regression data set (Sec. 4.1, Fig. 1A).

    Returns
    -------
    x, y : ndarray, shape (200,)
        inputs x_i = -3 + 0.03 (i - 1) and noisy targets y_i = exp(-x_i^2) + noise.
    """
    x = store.load("paper-regression", "x_train.txt", regenerate=RESTORE_REGRESSION).arrays["x_train"]
    y = store.load("paper-regression", "y_train.txt", regenerate=RESTORE_REGRESSION).arrays["y_train"]
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
    f = store.load("mnist7x7", regenerate=MAKE_MNIST7).arrays
    sums = f[f"{split}_block_sums"]
    labels = f[f"{split}_labels"].astype(np.int64)
    images = sums.reshape(len(sums), 49).astype(np.float64) / (16.0 * 255.0)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
