"""Weights on disk: ``.npz`` without pickle, written atomically, validated on load.

A weights file holds one array per parameter (dotted names, as ``Module.state_dict``), plus three
entries of our own: ``__format__`` (a version number), ``__config__`` (the model's configuration as
JSON text) and ``__manifest__`` (JSON: each parameter's name and shape). Everything is stored as plain
numeric arrays, so loading never needs ``allow_pickle=True``, which could run code from a hostile file;
and a file is checked before it is trusted (see :func:`load_weights`): a hostile or damaged file is a
``WeightsError`` naming what is wrong, never a ``MemoryError``, a NumPy error or a silent load.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .module import Module

__all__ = [
    "FORMAT_VERSION",
    "WeightsError",
    "check_parameter_shapes",
    "save_weights",
    "load_weights",
]

FORMAT_VERSION = 1
_RESERVED = ("__format__", "__config__", "__manifest__")


class WeightsError(ValueError):
    """A weights file is missing, truncated, foreign, or does not fit the model."""


def _text(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-8"), dtype=np.uint8)


def save_weights(path, state: dict[str, np.ndarray] | Module, config: dict | None = None) -> Path:
    """Write ``state`` (name -> array, or a ``Module``) and a JSON-serialisable ``config`` to ``path``.

    The file is first written next to its destination under a temporary name, flushed to disk, and
    then renamed over it (``os.replace`` is atomic), so a crash leaves either the old file or the new
    one, never half of one.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    if isinstance(state, Module):
        state = state.state_dict()
    try:
        config_text = json.dumps(config or {}, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"config must be JSON-serialisable ({err})") from None
    for name in state:
        if name in _RESERVED:
            raise ValueError(f"parameter name {name!r} is reserved")
    arrays = {name: np.asarray(a) for name, a in state.items()}
    for name, a in arrays.items():
        if a.dtype == object:
            raise ValueError(f"parameter {name!r} is an object array; only numbers can be saved")
    manifest = {name: list(a.shape) for name, a in arrays.items()}
    if not path.parent.is_dir():
        raise ValueError(f"path {path}: the directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                __format__=np.array(FORMAT_VERSION),
                __config__=_text(config_text),
                __manifest__=_text(json.dumps(manifest, sort_keys=True)),
                **arrays,
            )
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; weights are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_MAGIC_NPY = b"\x93NUMPY"
# deflate cannot compress by more than about 1032:1; a member that claims more is a zip bomb
_MAX_DEFLATE_RATIO = 1100
# what can go wrong while reading a damaged archive (encrypted members raise RuntimeError)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                RuntimeError)  # fmt: skip


class _Member(NamedTuple):
    """One array of the archive, known from its ``.npy`` header before its data is read."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path) -> _Member:
    """The declared shape and dtype of one member, checked against the bytes the member holds."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise WeightsError(
                f"{path}: {name!r} is an .npy array of unsupported version {version}"
            )
        read = np.lib.format.read_array_header_1_0
        if version == (2, 0):
            read = np.lib.format.read_array_header_2_0
        try:  # the header is a Python literal: garbage fails in the tokenizer or the parser
            shape, _, dtype = read(f)
        except (ValueError, TypeError, SyntaxError, tokenize.TokenError) as err:
            raise WeightsError(
                f"{path}: truncated or not a weights file (the header of {name!r}: {err})"
            ) from None
        header = f.tell()
    if dtype.hasobject:
        raise WeightsError(f"{path}: {name!r} contains pickled (object) data; refusing to load it")
    if dtype.kind not in "iuf":
        kind = {"b": "bool", "c": "complex"}.get(dtype.kind, str(dtype))
        raise WeightsError(
            f"{path}: parameter {name!r} holds {kind} values; a weights file holds real numbers"
        )
    need = math.prod(shape) * dtype.itemsize  # Python ints: no overflow for any declared shape
    if need > info.file_size - header:
        raise WeightsError(
            f"{path}: parameter {name!r} declares shape {tuple(shape)} ({need} bytes) but holds "
            f"{max(info.file_size - header, 0)} bytes: truncated or corrupt"
        )
    return _Member(info, tuple(shape), dtype)


def _members(zf: zipfile.ZipFile, path, disk_size: int) -> dict[str, _Member]:
    """Every member's header, before any data is read: names, shapes, dtypes, plausible sizes."""
    members = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise WeightsError(f"{path}: not a weights file (member {info.filename!r} is no array)")
        name = info.filename[: -len(".npy")]
        if name in members:
            raise WeightsError(f"{path}: corrupt archive ({name!r} stored twice)")
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.compress_size > disk_size or (
            info.file_size
            > (info.compress_size if stored else _MAX_DEFLATE_RATIO * info.compress_size + 1024)
        ):
            raise WeightsError(
                f"{path}: truncated or corrupt ({name!r} claims {info.file_size} bytes in a file "
                f"of {disk_size})"
            )
        members[name] = _read_header(zf, info, name, path)
    return members


def _read(zf: zipfile.ZipFile, member: _Member) -> np.ndarray:
    with zf.open(member.info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def load_weights(path, expected: dict[str, tuple[int, ...]] | Module | None = None):
    """Read a weights file (without pickle), checking it before trusting it.

    Before any array's data is read, every member's ``.npy`` header is read on its own: its declared
    shape must fit the bytes the member holds (a tiny file declaring a 7 TiB array is refused, not
    allocated), its dtype must be a real number type (no object, bool, complex or string), and the
    manifest must list exactly the members, with their shapes. After reading, float arrays must be
    finite.

    Args:
        path: the ``.npz`` file.
        expected: optional name -> shape that the file must provide exactly, or a ``Module`` whose
            parameters give them; extra or missing names and wrong shapes are errors. Load the
            result into a model with ``model.load_state_dict(state)``.

    Returns:
        ``(state, config)``: name -> array, and the stored configuration dict.

    Raises:
        WeightsError: naming the problem (missing, truncated or corrupt, foreign, an ``.npy`` or
            anything else that is not a zip archive, wrong version, missing key, wrong shape or
            dtype, a NaN or infinite value), and the parameter where there is one.
    """
    path = Path(path)
    if isinstance(expected, Module):
        expected = {name: p.shape for name, p in expected.named_parameters()}
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        head = f.read(len(_MAGIC_NPY))
    if head == _MAGIC_NPY:
        raise WeightsError(f"{path}: not a weights file (an .npy array, not an .npz archive)")
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{path}: truncated or not a weights file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            members = _members(zf, path, path.stat().st_size)
            if "__format__" not in members or "__manifest__" not in members:
                raise WeightsError(
                    f"{path}: not a rcnn-from-scratch weights file (no format or manifest)"
                )
            version = _read(zf, members.pop("__format__"))
            if version.shape != () or not np.issubdtype(version.dtype, np.integer):
                raise WeightsError(f"{path}: corrupt format version {version!r}")
            version = int(version)
            if version != FORMAT_VERSION:
                raise WeightsError(
                    f"{path}: format version {version}; this code reads {FORMAT_VERSION}"
                )
            manifest = _json(_read(zf, members.pop("__manifest__")), path)
            config = (
                _json(_read(zf, members.pop("__config__")), path) if "__config__" in members else {}
            )
            _check_manifest(manifest, members, path)
            if expected is not None:
                _check_expected(expected, members, path)
            arrays = {name: _read(zf, m) for name, m in members.items()}
    except WeightsError:
        raise
    except _READ_ERRORS as err:
        raise WeightsError(f"{path}: truncated or not a weights file ({err})") from None
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise WeightsError(f"{path}: parameter {name!r} holds {bad} NaN or infinite value(s)")
    return arrays, config


def _json(text: np.ndarray, path) -> dict:
    try:
        value = json.loads(text.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path}: corrupt manifest or config ({err})") from None
    if not isinstance(value, dict):
        raise WeightsError(f"{path}: corrupt manifest or config (not a JSON object)")
    return value


def _check_manifest(manifest: dict, members: dict[str, _Member], path) -> None:
    """The manifest lists every array with its shape; headers must agree (data not yet read)."""
    for name, shape in manifest.items():
        if name not in members:
            raise WeightsError(f"{path}: parameter {name!r} listed in the manifest is missing")
        if not isinstance(shape, list) or list(members[name].shape) != shape:
            raise WeightsError(
                f"{path}: parameter {name!r} has shape {members[name].shape}, manifest {shape}"
            )
    unlisted = sorted(set(members) - set(manifest))
    if unlisted:
        raise WeightsError(f"{path}: array(s) {unlisted} not listed in the manifest")


def _check_expected(expected: dict, members: dict[str, _Member], path) -> None:
    check_parameter_shapes(expected, {name: m.shape for name, m in members.items()}, path)


def check_parameter_shapes(expected: dict, shapes: dict, path) -> None:
    """The file's arrays (name -> shape) must be exactly the model's parameters (name -> shape),
    each of exactly its shape: a missing or unexpected name, or another shape, is a
    :class:`WeightsError` naming it (nothing is broadcast)."""
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing:
        raise WeightsError(f"{path}: missing parameter(s) {missing}")
    if extra:
        raise WeightsError(f"{path}: unexpected parameter(s) {extra}")
    for name, shape in expected.items():
        if tuple(shapes[name]) != tuple(shape):
            raise WeightsError(
                f"{path}: parameter {name!r} has shape {tuple(shapes[name])}; "
                f"the model needs {tuple(shape)}"
            )
