"""The one store of results (noneq.store): save/load round trip with the full provenance, and
every stored result of data/ corrupted in a temporary copy (a byte flipped, an array re-saved
with doubled values, a truncated file, a broken PROVENANCE.json, a missing file): each gives
DataError naming the file, what is wrong and the command that regenerates it."""
import datetime
import json
import re
import shutil
import zipfile

import numpy as np
import pytest

import noneq
from noneq import data, store
from noneq.scripts import earthquake, mnist, ness_sgd, samplers, samplers_mnist, sgd_wr, sgworld
from noneq.data import DataError

DATA = data.data_dir()


def _load_regression():
    data.load_regression.cache_clear()
    return data.load_regression()


def _load_mnist7():
    data.load_mnist7.cache_clear()
    return data.load_mnist7("train")


#: every stored result: folder, the file the test corrupts, an array of it to double (the issue's
#: sgworld ``kl*2`` and sgd_wr ``wr_mean*2``), and the chapter loader that reads it
RESULTS = [
    ("paper-regression", "x_train.txt", "x_train", _load_regression),
    ("paper-regression", "y_train.txt", "y_train", _load_regression),
    ("mnist7x7", "mnist7x7.npz", "train_block_sums", _load_mnist7),
    ("sgd_wr", "sgd_wr.npz", "wr_mean", sgd_wr.load),
    ("sgworld", "sgworld.npz", "kl", sgworld.load),
    ("earthquake", "earthquake.npz", "quake_cov", earthquake.load),
    ("ness_sgd", "ness_sgd.npz", "wr_cov", ness_sgd.load),
    ("mnist", "mnist.npz", "wr_sigma", mnist.load),
    ("samplers", "samplers.npz", "kl", samplers.load),
    ("samplers_mnist", "samplers_mnist.npz", "kl", samplers_mnist.load),
]
IDS = [f"{r[0]}/{r[1]}" for r in RESULTS]


@pytest.fixture
def copy_of(tmp_path, monkeypatch):
    """Copy one folder of data/ into a temporary data root (NONEQ_DATA) and return its path."""
    def copy(name):
        target = tmp_path / "data" / name
        shutil.copytree(DATA / name, target)
        monkeypatch.setenv("NONEQ_DATA", str(tmp_path / "data"))
        return target
    yield copy
    data.load_regression.cache_clear()
    data.load_mnist7.cache_clear()


def _command(name):
    return json.loads((DATA / name / "PROVENANCE.json").read_text())["command"]


def _raises(loader, path, what, command):
    """``loader()`` raises DataError naming ``path``, matching ``what`` and naming ``command``."""
    with pytest.raises(DataError) as err:
        loader()
    msg = str(err.value)
    assert str(path) in msg and re.search(what, msg), msg
    assert f"Regenerate it with `{command}`" in msg, msg
    return msg


# ------------------------------------------------------------------------------- shipped data
def test_every_data_folder_is_in_the_schema_and_verifies():
    folders = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name != "bench")
    assert folders == sorted({r[0] for r in RESULTS})
    for name in folders:
        prov = store.read_provenance(name)
        assert tuple(k for k in prov if k not in store.OPTIONAL_FIELDS) == store.FIELDS
        assert set(prov) - set(store.FIELDS) <= set(store.OPTIONAL_FIELDS) and prov["schema"] == store.SCHEMA and prov["name"] == name
        on_disk = sorted(p.name for p in (DATA / name).iterdir() if p.name not in ("PROVENANCE.json", "README.md"))
        assert sorted(prov["files"]) == on_disk, f"{name}: files not recorded in PROVENANCE.json"
        for file, rec in prov["files"].items():
            assert store.verify(name, file) == DATA / name / file
            assert rec["bytes"] == (DATA / name / file).stat().st_size


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_loaders_read_the_shipped_copy(copy_of, name, file, key, loader):
    folder = copy_of(name)
    assert loader() is not None
    stored = store.load(name, file)
    assert key in stored.arrays and stored.path == folder / file


# --------------------------------------------------------------------------- corrupted copies
@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_byte_flipped(copy_of, name, file, key, loader):
    path = copy_of(name) / file
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    _raises(loader, path, "checksum mismatch.*corrupt or modified", _command(name))


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_values_doubled(copy_of, name, file, key, loader):
    """The issue's case: sgworld.npz re-saved with kl*2 (sgd_wr.npz: wr_mean*2) loaded without complaint."""
    path = copy_of(name) / file
    if file.endswith(".txt"):
        np.savetxt(path, 2 * np.loadtxt(path))
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays[key] = arrays[key] * 2
        store.save_npz(path, **arrays)
    _raises(loader, path, "(size|checksum) mismatch", _command(name))


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_truncated(copy_of, name, file, key, loader):
    path = copy_of(name) / file
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _raises(loader, path, rf"size mismatch: {len(raw) // 2} bytes, {len(raw)} recorded.*truncated", _command(name))


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_missing_file(copy_of, name, file, key, loader):
    path = copy_of(name) / file
    path.unlink()
    _raises(loader, path, "the file is missing", _command(name))


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_broken_provenance(copy_of, name, file, key, loader):
    """A cut-off PROVENANCE.json (was a bare JSONDecodeError): the command is still named."""
    prov = copy_of(name) / "PROVENANCE.json"
    text = prov.read_text()
    prov.write_text(text[: text.index('"files"')])
    _raises(loader, prov, "not valid JSON \\(JSONDecodeError", _command(name))


@pytest.mark.parametrize("name,file,key,loader", RESULTS, ids=IDS)
def test_missing_provenance_names_the_script(copy_of, name, file, key, loader):
    """With no PROVENANCE.json the chapter loaders still say what regenerates the folder."""
    prov = copy_of(name) / "PROVENANCE.json"
    prov.unlink()
    with pytest.raises(DataError, match=r"PROVENANCE.json: the file is missing\. Regenerate it with `(python -m "
                                        rf"noneq\.scripts\.\w+|git checkout) .*data/{name}`"):
        loader()


@pytest.mark.parametrize("name,file,key,loader", RESULTS[2:], ids=IDS[2:])
def test_not_a_valid_npz_with_matching_checksum(copy_of, name, file, key, loader):
    """A broken file whose checksum was recorded anyway (was zipfile.BadZipFile with no path)."""
    folder = copy_of(name)
    path = folder / file
    path.write_bytes(b"PK\x03\x04 not a zip archive")
    prov = json.loads((folder / "PROVENANCE.json").read_text())
    prov["files"][file] = {"sha256": store.sha256(path), "bytes": path.stat().st_size}
    (folder / "PROVENANCE.json").write_text(json.dumps(prov))
    _raises(loader, path, r"not a valid \.npz \(BadZipFile", _command(name))


def test_old_schema_and_malformed_entries(copy_of):
    folder = copy_of("sgworld")
    prov_path = folder / "PROVENANCE.json"
    prov = json.loads(prov_path.read_text())
    old = {k: v for k, v in prov.items() if k not in ("schema", "files")}
    old["sha256"] = {"sgworld.npz": prov["files"]["sgworld.npz"]["sha256"]}        # the format before noneq.store
    prov_path.write_text(json.dumps(old))
    _raises(sgworld.load, prov_path, r"not in the schema noneq.store/1 \(schema None; missing fields "
                                        r"\['schema', 'files'\]\)", prov["command"])
    prov_path.write_text(json.dumps({**prov, "files": {"sgworld.npz": {"sha256": "abc", "bytes": 1}}}))
    _raises(sgworld.load, prov_path, "malformed 'files' entry", prov["command"])
    prov_path.write_text(json.dumps({**prov, "files": {"other.npz": prov["files"]["sgworld.npz"]}}))
    _raises(sgworld.load, folder / "sgworld.npz", r"no checksum recorded for it in PROVENANCE.json \(it records "
                                                 r"\['other.npz'\]\)", prov["command"])
    prov_path.write_text("[1, 2]")
    with pytest.raises(DataError, match="holds a JSON list, not an object.*noneq.scripts.sgworld"):
        sgworld.load()


def test_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NONEQ_DATA", str(tmp_path))
    with pytest.raises(DataError, match=rf"{tmp_path / 'sgd_wr'}: the folder is missing\. Regenerate it with "
                                        r"`python -m noneq.scripts.sgd_wr --out data/sgd_wr`"):
        sgd_wr.load()
    with pytest.raises(DataError, match="the folder is missing. No command that regenerates it is recorded"):
        store.load("nothing-here")


# ------------------------------------------------------------------------------ save and load
def test_save_load_round_trip_with_full_provenance(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.uint16).reshape(2, 3), "b": np.linspace(0, 1, 5), "c": np.float64(2.5)}
    params = {"n": 3, "eta": 1e-7, "sizes": [1, 2]}
    t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    path = store.save("run", arrays, root=tmp_path, command="python -m demo --out data/run", seed=7,
                      parameters=params, keys="jax.random.key(seed)", description="a test result",
                      wall_time_s={"total_s": 1.5})
    assert path == tmp_path / "run" / "run.npz"
    stored = store.load("run", root=tmp_path)
    assert list(stored.arrays) == ["a", "b", "c"] and stored.path == path
    for k, v in arrays.items():
        np.testing.assert_array_equal(stored.arrays[k], v)
        assert stored.arrays[k].dtype == np.asarray(v).dtype
    prov = stored.provenance
    assert tuple(prov) == store.FIELDS
    assert prov == json.loads((tmp_path / "run" / "PROVENANCE.json").read_text())
    assert (prov["schema"], prov["name"], prov["description"], prov["command"], prov["seed"], prov["keys"]) == (
        store.SCHEMA, "run", "a test result", "python -m demo --out data/run", 7, "jax.random.key(seed)")
    assert prov["parameters"] == params and prov["wall_time_s"] == {"total_s": 1.5}
    import jax
    import platform

    assert prov["noneq_version"] == noneq.__version__ and prov["jax_version"] == jax.__version__
    assert prov["numpy_version"] == np.__version__ and prov["python_version"] == platform.python_version()
    assert re.fullmatch(r"[0-9a-f]{40}(\+uncommitted changes)?|unknown", prov["git_commit"])
    assert str(jax.devices()[0]) in prov["platform"]
    assert datetime.datetime.fromisoformat(prov["date_utc"]) >= t0
    assert prov["files"] == {"run.npz": {"sha256": store.sha256(path), "bytes": path.stat().st_size}}
    # the same call through the folder itself, and a second save gives the same bytes
    assert store.load(tmp_path / "run").provenance == prov
    store.save(tmp_path / "run2", arrays, file="run.npz", command="x", seed=None, parameters={})
    assert (tmp_path / "run2" / "run.npz").read_bytes() == path.read_bytes()
    assert store.read_provenance(tmp_path / "run2")["seed"] is None


def test_git_commit_unknown_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "__file__", str(tmp_path / "store.py"))
    assert store.environment()["git_commit"] == "unknown"


def test_save_rejects_bad_input(tmp_path):
    ok = dict(command="python -m x", seed=0, parameters={}, root=tmp_path)
    with pytest.raises(ValueError, match="name must be a folder name"):
        store.save("a/b", {"x": 1}, **ok)
    with pytest.raises(ValueError, match="arrays must be a non-empty dict"):
        store.save("r", {}, **ok)
    with pytest.raises(ValueError, match="command must be"):
        store.save("r", {"x": 1}, **{**ok, "command": " "})
    with pytest.raises(ValueError, match="seed must be an int or None"):
        store.save("r", {"x": 1}, **{**ok, "seed": 1.5})
    with pytest.raises(ValueError, match="parameters must be JSON-serializable"):
        store.save("r", {"x": 1}, **{**ok, "parameters": {"f": object()}})
    with pytest.raises(ValueError, match="file must be a file name ending in .npz"):
        store.save("r", {"x": 1}, file="r.txt", **ok)
    assert not (tmp_path / "r").exists()         # nothing written on bad input


def test_load_needs_file_when_the_folder_has_several(copy_of):
    copy_of("paper-regression")
    with pytest.raises(ValueError, match=r"file must name one of the files .*\['x_train.txt', 'y_train.txt'\]"):
        store.load("paper-regression")
    x = store.load("paper-regression", "x_train.txt").arrays["x_train"]
    np.testing.assert_allclose(x, -3 + 0.03 * np.arange(200), atol=1e-12)


def test_npz_written_by_save_npz_is_a_zip_with_fixed_dates(tmp_path):
    p = store.save_npz(tmp_path / "z.npz", a=np.ones(3))
    with zipfile.ZipFile(p) as zf:
        assert [i.date_time for i in zf.infolist()] == [(1980, 1, 1, 0, 0, 0)]
