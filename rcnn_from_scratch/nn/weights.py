"""Weights on disk: ``.npz`` without pickle, written atomically, validated on load.

A weights file holds one array per parameter (dotted names, as ``Module.state_dict``), plus three
entries of our own: ``__format__`` (a version number), ``__config__`` (the model's configuration as
JSON text) and ``__manifest__`` (JSON: each parameter's name and shape). Everything is stored as plain
numeric arrays, so loading never needs ``allow_pickle=True``, which could run code from a hostile file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .module import Module

__all__ = ["FORMAT_VERSION", "WeightsError", "save_weights", "load_weights"]

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


def load_weights(path, expected: dict[str, tuple[int, ...]] | Module | None = None):
    """Read a weights file (without pickle).

    Args:
        path: the ``.npz`` file.
        expected: optional name -> shape that the file must provide exactly, or a ``Module`` whose
            parameters give them; extra or missing names and wrong shapes are errors. Load the
            result into a model with ``model.load_state_dict(state)``.

    Returns:
        ``(state, config)``: name -> array, and the stored configuration dict.

    Raises:
        WeightsError: naming the problem (missing, truncated or corrupt, foreign, wrong version,
            missing key, wrong shape).
    """
    path = Path(path)
    if isinstance(expected, Module):
        expected = {name: p.shape for name, p in expected.named_parameters()}
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: truncated or not a weights file ({err})") from None
    if "__format__" not in arrays or "__manifest__" not in arrays:
        raise WeightsError(f"{path}: not a rcnn-from-scratch weights file (no format or manifest)")
    version = arrays.pop("__format__")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise WeightsError(f"{path}: corrupt format version {version!r}")
    version = int(version)
    if version != FORMAT_VERSION:
        raise WeightsError(f"{path}: format version {version}; this code reads {FORMAT_VERSION}")
    try:
        manifest = json.loads(arrays.pop("__manifest__").tobytes().decode("utf-8"))
        config = json.loads(arrays.pop("__config__", _text("{}")).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path}: corrupt manifest or config ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(config, dict):
        raise WeightsError(f"{path}: corrupt manifest or config (not a JSON object)")
    for name, shape in manifest.items():
        if name not in arrays:
            raise WeightsError(f"{path}: parameter {name!r} listed in the manifest is missing")
        if list(arrays[name].shape) != shape:
            raise WeightsError(
                f"{path}: parameter {name!r} has shape {arrays[name].shape}, manifest {shape}"
            )
    if expected is not None:
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing:
            raise WeightsError(f"{path}: missing parameter(s) {missing}")
        if extra:
            raise WeightsError(f"{path}: unexpected parameter(s) {extra}")
        for name, shape in expected.items():
            if tuple(arrays[name].shape) != tuple(shape):
                raise WeightsError(
                    f"{path}: parameter {name!r} has shape {arrays[name].shape}; "
                    f"the model needs {tuple(shape)}"
                )
    return arrays, config
