"""The shipped data: checksums, shapes, and clear errors for missing or corrupt files."""
import shutil

import numpy as np
import pytest

from noneq import data, store


def test_regression_data_matches_paper_description():
    x, y = data.load_regression()
    assert x.shape == y.shape == (200,)
    # x_i = -3 + 0.03 (i - 1), i = 1..M (Sec. 4.1)
    np.testing.assert_allclose(x, -3 + 0.03 * np.arange(200), atol=1e-12)
    # y = exp(-x^2) + noise of std 0.1: the residual std is 0.1 within sampling error (~5%)
    resid = y - np.exp(-x**2)
    assert abs(resid.std() - 0.1) < 0.015


def test_mnist7_shapes_range_and_label_counts():
    X, labels = data.load_mnist7("train")
    assert X.shape == (60000, 49) and labels.shape == (60000,)
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    Xt, lt = data.load_mnist7("test")
    assert Xt.shape == (10000, 49) and lt.shape == (10000,)


def test_mnist7_block_average_of_original(tmp_path):
    """The stored block sums reproduce the 4x4 means of the original images exactly."""
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
    if not src.exists():
        pytest.skip("the original MNIST files (../shared/data/mnist) are not present")
    from noneq.scripts import make_mnist7x7 as script

    images = script.read_idx(src / "t10k-images-idx3-ubyte.gz")[:50].astype(float)
    want = images.reshape(50, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(50, 49) / 255.0
    X, _ = data.load_mnist7("test")
    np.testing.assert_allclose(X[:50], want, rtol=0, atol=1e-15)


def test_mnist7_regenerates_byte_for_byte(tmp_path):
    """The script reproduces the shipped file exactly (same SHA-256), from the original files."""
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
    if not src.exists():
        pytest.skip("the original MNIST files (../shared/data/mnist) are not present")
    from noneq.scripts import make_mnist7x7 as script

    assert script.main(["--source", str(src), "--out", str(tmp_path)]) == 0
    new, shipped = store.read_provenance(tmp_path), store.read_provenance("mnist7x7")
    assert new["files"] == shipped["files"]
    assert {k: new[k] for k in ("description", "seed", "keys")} == {k: shipped[k] for k in ("description", "seed", "keys")}


def test_save_npz_is_deterministic_and_loads(tmp_path):
    import time

    arrays = {"a": np.arange(12, dtype=np.uint16).reshape(3, 4), "b": np.linspace(0, 1, 5)}
    p1 = data.save_npz(tmp_path / "one.npz", **arrays)
    time.sleep(2.1)  # zip stores times in 2 s steps: a later write must still be identical
    p2 = data.save_npz(tmp_path / "two.npz", **arrays)
    assert p1.read_bytes() == p2.read_bytes()
    with np.load(p1) as z:
        assert list(z.keys()) == ["a", "b"]
        for k, v in arrays.items():
            np.testing.assert_array_equal(z[k], v)
            assert z[k].dtype == v.dtype


def test_bad_split_is_rejected():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_mnist7("validation")


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    target = tmp_path / "data"
    shutil.copytree(data.data_dir(), target)
    monkeypatch.setenv("NONEQ_DATA", str(target))
    data.load_regression.cache_clear()
    data.load_mnist7.cache_clear()
    yield target
    data.load_regression.cache_clear()
    data.load_mnist7.cache_clear()


def test_missing_file_gives_clear_error(data_copy):
    (data_copy / "paper-regression" / "y_train.txt").unlink()
    with pytest.raises(data.DataError, match="y_train.txt: the file is missing. Regenerate it with `git checkout"):
        data.load_regression()


def test_corrupt_file_gives_clear_error(data_copy):
    path = data_copy / "paper-regression" / "x_train.txt"
    path.write_text(path.read_text().replace("-3.0", "-3.1", 1))
    with pytest.raises(data.DataError, match="x_train.txt: checksum mismatch.*corrupt or modified"):
        data.load_regression()


def test_corrupt_mnist_gives_clear_error(data_copy):
    path = data_copy / "mnist7x7" / "mnist7x7.npz"
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="mnist7x7.npz: checksum mismatch.*corrupt or modified.*"
                                             "noneq.scripts.make_mnist7x7"):
        data.load_mnist7("train")


def test_bad_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NONEQ_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match="is not a folder"):
        data.data_dir()
