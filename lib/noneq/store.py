"""The one store of results kept in ``data/``: :func:`save` and :func:`load` of a named result.

A stored result is a folder ``data/<name>/`` with its data files (a compressed ``.npz`` written by
:func:`save`, or the text files shipped with the course) and ``PROVENANCE.json``, one schema for
every folder (:data:`SCHEMA`; :data:`FIELDS` lists its keys in order):

* ``schema``, ``name``, ``description``;
* ``command``: the command that regenerates the folder; ``seed`` (int; null when no random numbers
  are used); ``keys`` (how the random keys derive from the seed); ``parameters`` (dict);
* ``noneq_version``, ``git_commit`` (of the library's checkout, or "unknown" outside one; with
  "+uncommitted changes" when its tracked files differed from the commit), ``python_version``,
  ``numpy_version``, ``jax_version``, ``platform`` (machine, cores, JAX backend and devices);
* ``wall_time_s`` (dict), ``date_utc`` (creation time, ISO 8601);
* ``files``: per file name its ``sha256`` (hex) and ``bytes`` (size).

A field the run that made the folder did not record holds "unknown".

:func:`load` always checks the file's size and SHA-256 against ``PROVENANCE.json`` before it returns
arrays. Every problem with stored data (a missing folder or file, a size or checksum mismatch, a
file that is not a valid ``.npz``, a broken or incomplete ``PROVENANCE.json``) raises
:class:`DataError`, whose message names the file, what is wrong and the command that regenerates it.

The data root is ``data_dir()``: the environment variable ``NONEQ_DATA``, else the ``data/`` folder
beside the editable-installed ``lib/``, else a ``data/`` folder in the current directory or a
parent. Every function also takes the folder itself (a ``pathlib.Path``) instead of a name.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import pathlib
import platform
import re
import subprocess
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

__all__ = [
    "DataError",
    "Stored",
    "SCHEMA",
    "FIELDS",
    "OPTIONAL_FIELDS",
    "PROVENANCE",
    "UNKNOWN",
    "data_dir",
    "save",
    "load",
    "verify",
    "read_provenance",
    "save_npz",
    "sha256",
    "environment",
]

#: the schema tag written into every PROVENANCE.json
SCHEMA = "noneq.store/1"
#: the keys of PROVENANCE.json, in the order they are written
FIELDS = ("schema", "name", "description", "command", "seed", "keys", "parameters", "noneq_version",
          "git_commit", "python_version", "numpy_version", "jax_version", "platform", "wall_time_s",
          "date_utc", "files")
#: keys a PROVENANCE.json may add after FIELDS: a result whose script or folder was renamed after
#: it ran keeps the command as it was run (``command_as_run``) and says what was renamed
#: (``renamed``); ``command`` is then today's equivalent
OPTIONAL_FIELDS = ("command_as_run", "renamed")
#: the provenance file of every stored result
PROVENANCE = "PROVENANCE.json"
#: what a field that was never recorded holds
UNKNOWN = "unknown"


class DataError(ValueError):
    """Stored data is missing, corrupt or cannot be found (the message names the file, what is
    wrong and the command that regenerates it)."""


class Stored(NamedTuple):
    """What :func:`load` returns: ``arrays`` (dict name -> ndarray: the arrays of an ``.npz``, or
    ``{stem: np.loadtxt(file)}`` for a text file), ``provenance`` (the dict of PROVENANCE.json) and
    ``path`` (the file read)."""
    arrays: dict
    provenance: dict
    path: pathlib.Path


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


def _folder(name, root) -> pathlib.Path:
    """``name`` (a str) under ``root`` (default :func:`data_dir`), or ``name`` itself if a Path."""
    if isinstance(name, os.PathLike):
        return pathlib.Path(name)
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"name must be a folder name under the data root (a str with no '/') or the folder "
                         f"itself as a pathlib.Path, got {name!r}.")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a folder (a str or pathlib.Path), got {root!r:.80}.")
    return (data_dir() if root is None else pathlib.Path(root)) / name


def sha256(path) -> str:
    """The SHA-256 (hex) of the file at ``path``."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file path (a str or pathlib.Path), got {path!r:.80}.")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_npz(path, **arrays) -> pathlib.Path:
    """Write ``arrays`` to a compressed ``.npz`` that ``numpy.load`` reads, byte-for-byte
    the same for the same arrays: unlike ``numpy.savez_compressed`` it stores a fixed file
    date (1980-01-01) in the zip container, so a regenerated data file keeps its SHA-256.
    Arrays are written in the order given. Returns the path."""
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


def _git_commit() -> str:
    """The commit of the checkout the library runs from, or "unknown" outside one."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(here), *a], capture_output=True, text=True,  # noqa: E731
                                        timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        if run("status", "--porcelain", "--untracked-files=no"):
            commit += "+uncommitted changes"
        return commit or UNKNOWN
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN


def environment() -> dict:
    """The fields of PROVENANCE.json that describe where a result is made: ``noneq_version``,
    ``git_commit``, ``python_version``, ``numpy_version``, ``jax_version``, ``platform``."""
    import jax

    import noneq

    devices = [str(d) for d in jax.devices()]
    return {
        "noneq_version": noneq.__version__,
        "git_commit": _git_commit(),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "jax_version": jax.__version__,
        "platform": f"{platform.platform()}, {os.cpu_count()} CPUs, jax {jax.default_backend()} devices {devices}",
    }


def save(name, arrays, *, command, seed, parameters, file=None, keys=UNKNOWN, description="",
         wall_time_s=None, root=None) -> pathlib.Path:
    """Store ``arrays`` as the result ``name``: write ``<root>/<name>/<file>`` (a compressed,
    byte-reproducible ``.npz``, see :func:`save_npz`) and ``<root>/<name>/PROVENANCE.json`` in the
    one schema of this module. Returns the path of the ``.npz``.

    Parameters
    ----------
    name : str or pathlib.Path
        the folder name under ``root`` (default the data root), or the folder itself.
    arrays : dict str -> array_like
        the arrays, written in the order given.
    command : str
        the command that regenerates the folder (recorded, and named by every load error).
    seed : int or None
        the root seed of the random keys (None: the result uses no random numbers).
    parameters : dict
        every parameter of the run (JSON-serializable).
    file : str
        the file name (default ``<folder name>.npz``).
    keys, description : str
        how the random keys derive from the seed; what the folder holds.
    wall_time_s : dict, optional
        wall times of the parts of the run.
    """
    folder = _folder(name, root)
    file = f"{folder.name}.npz" if file is None else file
    if not isinstance(file, str) or not file.endswith(".npz") or "/" in file:
        raise ValueError(f"file must be a file name ending in .npz, got {file!r}.")
    if not isinstance(arrays, dict) or not arrays:
        raise ValueError(f"arrays must be a non-empty dict of name -> array, got {type(arrays).__name__}.")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be the command line that regenerates the result, got {command!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a dict, got {type(parameters).__name__}.")
    try:  # refuse what JSON cannot hold before writing anything
        json.dumps(parameters)
    except TypeError as e:
        raise ValueError(f"parameters must be JSON-serializable: {e}") from None
    folder.mkdir(parents=True, exist_ok=True)
    target = save_npz(folder / file, **arrays)
    prov = {
        "schema": SCHEMA,
        "name": folder.name,
        "description": description,
        "command": command,
        "seed": None if seed is None else int(seed),
        "keys": keys,
        "parameters": parameters,
        **environment(),
        "wall_time_s": UNKNOWN if wall_time_s is None else wall_time_s,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": {file: {"sha256": sha256(target), "bytes": target.stat().st_size}},
    }
    (folder / PROVENANCE).write_text(json.dumps(prov, indent=2) + "\n")
    return target


def _fail(path, what, command):
    how = f"Regenerate it with `{command}`" if command else "No command that regenerates it is recorded"
    raise DataError(f"Stored data {path}: {what}. {how}, or restore the copy shipped with the course with "
                    "`git checkout -- data/`.")


def _legible_command(raw: bytes):
    """The ``"command"`` string still legible in a damaged PROVENANCE.json, or None."""
    found = re.search(rb'"command"\s*:\s*"((?:[^"\\\n]|\\.)*)"', raw)
    try:
        return json.loads(b'"' + found.group(1) + b'"') if found else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def read_provenance(name, *, root=None, regenerate=None) -> dict:
    """The checked dict of ``<name>/PROVENANCE.json`` (``name`` a folder name under ``root`` or the
    folder itself). Raises :class:`DataError` if the folder or the file is missing, is not valid
    JSON, or lacks a field of the schema or a file's ``sha256``/``bytes``; ``regenerate`` is the
    command named in that message (the recorded one cannot be read)."""
    folder = _folder(name, root)
    path = folder / PROVENANCE
    if not folder.is_dir():
        _fail(folder, "the folder is missing", regenerate)
    if not path.is_file():
        _fail(path, "the file is missing", regenerate)
    raw = path.read_bytes()
    try:
        prov = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        _fail(path, f"not valid JSON ({type(e).__name__}: {e})", _legible_command(raw) or regenerate)
    if not isinstance(prov, dict):
        _fail(path, f"holds a JSON {type(prov).__name__}, not an object", regenerate)
    command = prov.get("command") if isinstance(prov.get("command"), str) else regenerate
    missing = [k for k in FIELDS if k not in prov]
    if missing or prov.get("schema") != SCHEMA:
        _fail(path, f"not in the schema {SCHEMA} (schema {prov.get('schema')!r}; missing fields {missing})", command)
    files = prov["files"]
    if not isinstance(files, dict) or not files or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) and len(v["sha256"]) == 64
            and isinstance(v.get("bytes"), int) for v in files.values()):
        _fail(path, f"malformed 'files' entry (want {{file: {{'sha256': 64 hex digits, 'bytes': int}}}}, "
                    f"got {str(files)[:200]})", command)
    return prov


def _check(folder, file, prov, regenerate):
    """The path of ``file`` after checking it against ``prov``, and the command for errors."""
    command = prov.get("command", regenerate)
    files = prov["files"]
    if file is not None and not isinstance(file, str):
        raise ValueError(f"file must be a file name (a str) of {folder}, got {file!r:.80}.")
    if file is None:
        if len(files) != 1:
            raise ValueError(f"file must name one of the files of {folder} ({sorted(files)}), got None.")
        file = next(iter(files))
    if file not in files:
        _fail(folder / file, f"no checksum recorded for it in {PROVENANCE} (it records {sorted(files)})", command)
    path = folder / file
    if not path.is_file():
        _fail(path, "the file is missing", command)
    want = files[file]
    size = path.stat().st_size
    if size != want["bytes"]:
        _fail(path, f"size mismatch: {size} bytes, {want['bytes']} recorded in {PROVENANCE} (the file is "
                    "truncated, extended or replaced)", command)
    got = sha256(path)
    if got != want["sha256"]:
        _fail(path, f"checksum mismatch: sha256 {got[:12]}... differs from the {want['sha256'][:12]}... "
                    f"recorded in {PROVENANCE} (the file is corrupt or modified)", command)
    return path, file, command


def verify(name, file=None, *, root=None, regenerate=None) -> pathlib.Path:
    """Check that ``file`` of the stored result ``name`` exists and has the size and SHA-256
    recorded in its PROVENANCE.json; return its path. ``file`` may be omitted when the folder
    holds one file. Raises :class:`DataError` naming the file, what is wrong and the command
    that regenerates it (``regenerate`` if PROVENANCE.json cannot be read)."""
    folder = _folder(name, root)
    return _check(folder, file, read_provenance(folder, regenerate=regenerate), regenerate)[0]


def load(name, file=None, *, root=None, regenerate=None) -> Stored:
    """Load ``file`` of the stored result ``name`` after verifying it (:func:`verify`).

    Parameters
    ----------
    name : str or pathlib.Path
        the folder name under ``root`` (default the data root), or the folder itself.
    file : str, optional
        a file recorded in PROVENANCE.json (default: its only file); ``.npz`` files give their
        arrays, text files (``.txt``) ``{stem: numpy.loadtxt(file)}``.
    regenerate : str, optional
        the command named in errors when PROVENANCE.json itself is missing or broken.

    Returns
    -------
    Stored
        ``(arrays, provenance, path)``.

    Raises
    ------
    DataError
        the folder, PROVENANCE.json or the file is missing; PROVENANCE.json is not valid JSON or
        not in the schema; the size or the checksum differs; the file cannot be read as an
        ``.npz`` (or text table). The message names the file and the command that regenerates it.
    """
    folder = _folder(name, root)
    prov = read_provenance(folder, regenerate=regenerate)
    path, file, command = _check(folder, file, prov, regenerate)
    try:
        if file.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        else:
            arrays = {path.stem: np.loadtxt(path)}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
        kind = "a valid .npz" if file.endswith(".npz") else "a valid text table"
        _fail(path, f"not {kind} ({type(e).__name__}: {e}), though its checksum matches {PROVENANCE}", command)
    return Stored(arrays, prov, path)
