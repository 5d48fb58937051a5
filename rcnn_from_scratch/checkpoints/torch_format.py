"""Read the files ``torch.save(state_dict, path)`` writes, with NumPy alone and without running them.

What torch.save writes
----------------------
A state dict is an ``OrderedDict`` of name -> tensor, and a tensor is a view (offset, size, stride) into
a flat *storage* of numbers. torch pickles the dict, but writes each storage as raw bytes outside the
pickle; inside, a storage is only a *persistent id*, a tuple ``('storage', FloatStorage, key, 'cpu',
numel)`` that names the bytes. Two layouts hold the same pieces::

    zip (torch >= 1.6, the default)           legacy (_use_new_zipfile_serialization=False)
    +-------------------------------+         +-----------------------------------------------+
    | archive/data.pkl    the dict  |         | pickle: magic number 0x1950a86a20f9469cfc6c   |
    | archive/byteorder   b"little" |         | pickle: protocol version 1001                 |
    | archive/data/0      raw bytes |         | pickle: {'little_endian': True, ...}          |
    | archive/data/1      raw bytes |         | pickle: the dict                              |
    | archive/version ... (ignored) |         | pickle: sorted list of storage keys           |
    +-------------------------------+         | per key: int64 count, count * itemsize bytes  |
      entries stored uncompressed             +-----------------------------------------------+

The COCO Mask R-CNN weights torchvision publishes are legacy files; newer ones are zips. torch.hub also
accepts a zip holding one legacy file as its only member, and so do we.

The pickle in both is read by ``pickle_machine.py``, never by ``pickle``.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np

from .pickle_machine import (
    CheckpointError,
    _describe,
    _itemsize,
    _Storage,
    _storage_reader,
    _Stream,
    _Tensor,
    _unpickle,
)

__all__ = ["CheckpointError", "read_state_dict"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy file
PROTOCOL_VERSION = 1001  # the second
# the tensors we return may be larger than the file only through zero strides (expand); a state dict
# has none, so growth beyond this factor means a hostile file asking for memory it does not back
_MAX_GROWTH = 8


def _as_state_dict(obj, where: str) -> dict[str, _Tensor]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{where}: holds {_describe(obj)}, not a state dict (name -> tensor)")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{where}: state dict key {key!r} is not a str")
        if not isinstance(value, _Tensor):
            hint = " (a checkpoint wrapping a state dict?)" if isinstance(value, dict) else ""
            raise CheckpointError(
                f"{where}: the value of {key!r} is {_describe(value)}, not a tensor{hint}"
            )
    return obj


def _check_budget(tensors: dict[str, _Tensor], storages: dict[str, _Storage], have: int, where):
    """Refuse, before allocating, storages larger than the bytes present and tensors far larger."""
    declared = sum(s.root_numel * _itemsize(s.dtype) for s in storages.values())
    if declared > have:
        raise CheckpointError(f"{where}: declares {declared} bytes of storage, has {have}")
    wanted = sum(
        math.prod(t.size) * (4 if t.storage.dtype == "bfloat16" else _itemsize(t.storage.dtype))
        for t in tensors.values()
    )
    if wanted > _MAX_GROWTH * have + 2**20:
        raise CheckpointError(f"{where}: its tensors would take {wanted} bytes from {have}")


def _cut(raw: np.ndarray, t: _Tensor) -> np.ndarray:
    """Copy tensor ``t`` out of ``raw``, its root storage (1-D, the file's byte order)."""
    base = raw[t.storage.start + t.offset :]
    if 0 in t.size:
        view = np.empty(t.size, dtype=raw.dtype)
    else:
        strides = tuple(s * raw.itemsize for s in t.stride)
        view = np.lib.stride_tricks.as_strided(base, t.size, strides, writeable=False)
    out = np.array(view, dtype=raw.dtype.newbyteorder("="), order="C")  # the copy
    if t.storage.dtype == "bfloat16":  # the top half of a float32
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _assemble(tensors, storages, chunks: Iterator[tuple[str, bytes]], little: bool, where):
    """Fill name -> array from (key, raw bytes) chunks, one storage in memory at a time."""
    by_key: dict[str, list[str]] = {}
    for name, t in tensors.items():
        by_key.setdefault(t.storage.key, []).append(name)
    out: dict[str, np.ndarray | None] = dict.fromkeys(tensors)
    for key, data in chunks:
        s = storages[key]
        dtype = np.dtype("uint16" if s.dtype == "bfloat16" else s.dtype)
        raw = np.frombuffer(data, dtype=dtype.newbyteorder("<" if little else ">"))
        for name in by_key.get(key, ()):
            out[name] = _cut(raw, tensors[name])
        del raw, data
    missing = [name for name, a in out.items() if a is None]
    if missing:
        raise CheckpointError(f"{where}: no bytes for the storage of {missing[0]!r}")
    return out


def _read_legacy(stream: _Stream) -> dict[str, np.ndarray]:
    where = stream.where
    if _unpickle(stream) != MAGIC_NUMBER:
        raise CheckpointError(f"{where}: not a torch.save file (no magic number)")
    if (version := _unpickle(stream)) != PROTOCOL_VERSION:
        raise CheckpointError(f"{where}: legacy protocol {version!r}, expected {PROTOCOL_VERSION}")
    sys_info = _unpickle(stream)
    little = sys_info.get("little_endian") if isinstance(sys_info, dict) else None
    if not isinstance(little, bool):
        raise CheckpointError(f"{where}: sys_info {sys_info!r} does not say the byte order")
    storages: dict[str, _Storage] = {}
    tensors = _as_state_dict(_unpickle(stream, _storage_reader(storages, legacy=True)), where)
    keys = _unpickle(stream)
    if (
        not isinstance(keys, list)
        or not all(isinstance(k, str) for k in keys)
        or sorted(keys) != sorted(storages)
    ):
        raise CheckpointError(f"{where}: storage key list {keys!r} does not match the tensors'")
    _check_budget(tensors, storages, stream.size - stream.pos, where)

    def chunks():
        for key in keys:
            s = storages[key]
            count = struct.unpack("<q" if little else ">q", stream.read(8, "a storage count"))[0]
            if count != s.root_numel:
                raise CheckpointError(
                    f"{where}: storage {key!r} at byte {stream.pos - 8} holds {count} elements, "
                    f"its tensors declared {s.root_numel}"
                )
            yield key, stream.read(count * _itemsize(s.dtype), f"storage {key!r}")

    return _assemble(tensors, storages, chunks(), little, where)


def _member(f, info: zipfile.ZipInfo, file_size: int, where: str) -> bytes:
    """The bytes of a stored (uncompressed) zip entry, read at its offset, as torch reads them."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"{where}: entry {info.filename!r} is compressed; torch.save stores")
    f.seek(info.header_offset)
    header = f.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise CheckpointError(f"{where}: entry {info.filename!r} has no local header")
    start = info.header_offset + 30 + sum(struct.unpack("<HH", header[26:30]))
    if start + info.file_size > file_size:
        raise CheckpointError(f"{where}: entry {info.filename!r} is truncated")
    f.seek(start)
    return f.read(info.file_size)


def _read_zip(f, file_size: int, where: str) -> dict[str, np.ndarray]:
    zf = zipfile.ZipFile(f)
    infos = zf.infolist()
    if not infos:
        raise CheckpointError(f"{where}: an empty zip archive")
    entries = {i.filename: i for i in infos}
    prefix = infos[0].filename.split("/")[0] + "/"  # as PyTorchStreamReader finds its archive name
    if prefix + "data.pkl" not in entries:
        if len(infos) == 1 and not infos[0].is_dir():  # torch.hub's zipped legacy file
            with zf.open(infos[0]) as member:
                inner = f"{where} member {infos[0].filename!r}"
                return _read_legacy(_Stream(member, infos[0].file_size, inner))
        raise CheckpointError(f"{where}: a zip without {prefix}data.pkl, not written by torch.save")
    order = b"little"
    if prefix + "byteorder" in entries:
        order = _member(f, entries[prefix + "byteorder"], file_size, where)
    if order not in (b"little", b"big"):
        raise CheckpointError(f"{where}: unknown byteorder {order!r}")
    pickle_bytes = _member(f, entries[prefix + "data.pkl"], file_size, where)
    storages: dict[str, _Storage] = {}
    stream = _Stream(io.BytesIO(pickle_bytes), len(pickle_bytes), f"{where} {prefix}data.pkl")
    tensors = _as_state_dict(_unpickle(stream, _storage_reader(storages, legacy=False)), where)
    for key, s in storages.items():
        info = entries.get(f"{prefix}data/{key}")
        if info is None:
            raise CheckpointError(f"{where}: storage {key!r} has no entry {prefix}data/{key}")
        if info.file_size != s.root_numel * _itemsize(s.dtype):
            raise CheckpointError(
                f"{where}: entry {info.filename!r} has {info.file_size} bytes, its tensors declared "
                f"{s.root_numel} x {_itemsize(s.dtype)}"
            )
    _check_budget(tensors, storages, file_size, where)
    chunks = (
        (key, _member(f, entries[f"{prefix}data/{key}"], file_size, where)) for key in storages
    )
    return _assemble(tensors, storages, chunks, order == b"little", where)


def read_state_dict(path) -> dict[str, np.ndarray]:
    """Read what ``torch.save(state_dict, path)`` wrote, without torch and without running pickle.

    Args:
        path: str or ``os.PathLike``, a file in torch's zip format, its legacy format, or a zip whose
            only member is a legacy file (as torch.hub accepts).

    Returns:
        dict name -> ``np.ndarray``, in the file's order, keys exactly as stored (``_metadata``
        dropped). Each array is a C-contiguous copy in native byte order with the stored dtype
        (float32, float16, float64, int64, int32, int16, int8, uint8, bool); bfloat16 becomes
        float32. A 0-d tensor (``num_batches_tracked``) is a 0-d array.

    Raises:
        FileNotFoundError: ``path`` does not exist (as ``open`` raises it).
        CheckpointError: (a ``ValueError``) anything else: a directory, a damaged or truncated
            file, a pickle asking for a global, opcode or persistent id a state dict does not
            need (the message names it), or an object that is not a dict of tensors.
    """
    path = os.fspath(path)
    where = repr(path)
    if os.path.isdir(path):
        raise CheckpointError(f"{where} is a directory, not a torch.save file")
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(512)
        f.seek(0)
        if not head:
            raise CheckpointError(f"{where} is empty")
        if head.startswith(b"\x93NUMPY"):
            raise CheckpointError(f"{where} is a NumPy .npy file, not a torch.save file")
        if head[257:262] == b"ustar":
            raise CheckpointError(f"{where}: torch's pre-1.0 tar format is not supported")
        try:
            if head.startswith(b"PK\x03\x04"):
                return _read_zip(f, file_size, where)
            return _read_legacy(_Stream(f, file_size, where))
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
                OSError, ValueError, NotImplementedError, RuntimeError, UnicodeDecodeError) as e:  # fmt: skip
            raise CheckpointError(f"{where}: damaged file ({type(e).__name__}: {e})") from e
