"""A pickle interpreter that knows only what a state dict needs: ``torch_format.py`` reads the
files, this reads the pickles in them.

Why pickle.load is never called
-------------------------------
A pickle is not data but a program for a small stack machine, and one of its instructions, ``GLOBAL``,
imports any function by name (``os system``) while ``REDUCE`` calls it with arguments from the stack.
``pickle.load`` on a downloaded file therefore runs whatever its author wrote (the pickle docs say so
in red, and show "Restricting Globals" as the remedy). We go one step further, as torch's own
``weights_only`` loader does: we interpret the program ourselves, with a machine that knows only the
two dozen instructions a state dict needs, and whose ``GLOBAL`` looks names up in a fixed table of
*inert* stand-ins. Nothing named in the file is ever imported, and nothing is ever called: "calling"
the stand-in for ``_rebuild_tensor_v2`` just records (storage, offset, size, stride) for later.

How the machine works
---------------------
A stack, a list of marks and a memo. Each opcode is one byte followed by its argument: ``BINUNICODE``
pushes a string, ``BININT1`` an int, ``MARK`` remembers where the stack was, ``TUPLE`` folds everything
above the mark into a tuple, ``BINPUT``/``BINGET`` save and fetch values by number (so a storage type
is spelt once), ``SETITEMS`` fills a dict, ``BINPERSID`` turns a persistent id into a storage reference,
``STOP`` returns the one value left. Anything else is refused by name. The tensors are then cut out of
the storage bytes with ``as_strided``, after checking every view stays inside its storage and every
storage inside the bytes the file really has, before anything large is allocated.
"""

from __future__ import annotations

import pickletools
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["CheckpointError"]  # and the machine's private pieces, for torch_format.py

# storage class -> NumPy dtype of its elements; bfloat16 has no NumPy dtype and is read as uint16
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}  # fmt: skip
_CALLABLES = {"OrderedDict", "_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter"}
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    *(("torch", name) for name in _STORAGE_DTYPES),
}


class CheckpointError(ValueError):
    """A file that is not a state dict written by ``torch.save``, is damaged, or asks for more."""


@dataclass(frozen=True)
class _Global:
    """The inert stand-in pushed by ``GLOBAL``: a name, never the object it names."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class _Storage:
    """Elements ``[start, start + numel)`` of the stored buffer ``key`` (``root_numel`` elements)."""

    key: str
    dtype: str
    root_numel: int
    start: int
    numel: int


@dataclass(frozen=True)
class _Tensor:
    """A tensor not yet read: ``storage[offset + sum(i_d * stride_d)]`` for each index ``i``."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _describe(value) -> str:
    if isinstance(value, _Tensor):
        return "a tensor"
    if isinstance(value, _Global):
        return f"the global {value}"
    name = type(value).__name__
    return ("an " if name[0] in "aeiouAEIOU" else "a ") + name


class _Stream:
    """A file object that knows how many bytes it holds and refuses to read past them."""

    def __init__(self, f, size: int, where: str):
        self.f, self.size, self.where, self.pos = f, size, where, 0

    def read(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.size - self.pos:
            raise CheckpointError(
                f"{self.where}: truncated: {what} at byte {self.pos} needs {n} bytes, "
                f"{self.size - self.pos} left"
            )
        data = self.f.read(n)
        if len(data) != n:
            raise CheckpointError(f"{self.where}: truncated at byte {self.pos + len(data)}")
        self.pos += n
        return data

    def readline(self, what: str) -> str:
        line = b""
        while not line.endswith(b"\n"):
            if len(line) > 256:
                raise CheckpointError(f"{self.where}: {what} at byte {self.pos} is too long")
            line += self.read(1, what)
        return line[:-1].decode("utf-8")


class _Machine:
    """The pickle interpreter: one instance per pickle, as each pickle has its own memo."""

    def __init__(self, stream: _Stream, persistent_load: Callable | None):
        self.stream, self.persistent_load = stream, persistent_load
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict[int, object] = {}

    def fail(self, message: str):
        raise CheckpointError(
            f"{self.stream.where}: {message} (opcode {self.op} at byte {self.at})"
        )

    def run(self):
        while True:
            self.at = self.stream.pos
            code = self.stream.read(1, "an opcode")
            handler = _HANDLERS.get(code)
            info = pickletools.code2op.get(code.decode("latin-1"))
            self.op = info.name if info else f"0x{code[0]:02x}"
            if handler is None:
                self.fail(f"refuses opcode {self.op}: a state dict does not need it")
            try:
                if handler(self) is _STOP:
                    if len(self.stack) != 1 or self.marks:
                        self.fail("STOP with more than one value left")
                    return self.stack.pop()
            except IndexError:  # pop from an empty stack or mark list
                self.fail("the stack holds too few values")

    # -- reading arguments
    def _u(self, fmt: str, what: str):
        return struct.unpack(fmt, self.stream.read(struct.calcsize(fmt), what))[0]

    def push(self, value):
        self.stack.append(value)

    def _pop_mark(self) -> list:
        items, self.stack = self.stack, self.marks.pop()
        return items

    # -- the opcodes, grouped as in pickle.py
    def proto(self):
        if (version := self._u("<B", "protocol")) != 2:
            self.fail(f"protocol {version} is not torch.save's protocol 2")

    def global_(self):
        module, name = self.stream.readline("module"), self.stream.readline("name")
        if (module, name) not in _ALLOWED_GLOBALS:
            self.fail(
                f"refuses the global '{module}.{name}': a state dict needs only OrderedDict, "
                "torch._utils._rebuild_tensor_v2 and torch's storage types"
            )
        self.stack.append(_Global(module, name))

    def put(self, index: int):
        if not self.stack:
            self.fail("nothing to memoise")
        self.memo[index] = self.stack[-1]

    def get(self, index: int):
        if index not in self.memo:
            self.fail(f"memo entry {index} was never stored")
        self.stack.append(self.memo[index])

    def tuple_n(self, n: int):
        if len(self.stack) < n:
            self.fail("the stack holds too few values")
        items = tuple(self.stack[len(self.stack) - n :])
        del self.stack[len(self.stack) - n :]
        self.stack.append(items)

    def reduce(self):
        args, func = self.stack.pop(), self.stack.pop()
        if not isinstance(func, _Global) or func.name not in _CALLABLES:
            self.fail(f"REDUCE refuses to call {_describe(func)}")
        if not isinstance(args, tuple):
            self.fail(f"REDUCE arguments of {func} must be a tuple, got {_describe(args)}")
        if func.name == "OrderedDict":
            if args:
                self.fail("OrderedDict must be built empty and filled by SETITEMS")
            self.stack.append(OrderedDict())
        elif func.name == "_rebuild_parameter":  # (tensor, requires_grad, hooks)
            if len(args) != 3 or not isinstance(args[0], _Tensor):
                self.fail("_rebuild_parameter expects (tensor, requires_grad, hooks)")
            self._check_hooks(args[2])
            self.stack.append(args[0])
        else:
            self.stack.append(self._tensor(func.name, args))

    def _check_hooks(self, hooks):
        if not isinstance(hooks, dict) or hooks:
            self.fail("backward hooks must be an empty OrderedDict")

    def _tensor(self, name: str, args: tuple) -> _Tensor:
        # _rebuild_tensor(storage, offset, size, stride) and _rebuild_tensor_v2(storage, offset,
        # size, stride, requires_grad, backward_hooks[, metadata]), torch/_utils.py
        if name == "_rebuild_tensor_v2":
            if len(args) not in (6, 7):
                self.fail(f"_rebuild_tensor_v2 expects 6 or 7 arguments, got {len(args)}")
            self._check_hooks(args[5])
            if len(args) == 7 and args[6]:  # conj / neg bits: not in a state dict
                self.fail(f"tensor metadata {args[6]!r} is not supported")
        elif len(args) != 4:
            self.fail(f"_rebuild_tensor expects 4 arguments, got {len(args)}")
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, _Storage):
            self.fail(
                f"a tensor's storage must come from a persistent id, got {_describe(storage)}"
            )
        if not _is_count(offset) or not _is_counts(size) or not _is_counts(stride):
            self.fail(f"bad tensor geometry: offset {offset!r}, size {size!r}, stride {stride!r}")
        if len(size) != len(stride):
            self.fail(f"size {size} and stride {stride} differ in length")
        last = offset + sum((s - 1) * t for s, t in zip(size, stride, strict=True))
        if (0 not in size and last >= storage.numel) or offset > storage.numel:
            self.fail(
                f"tensor (offset {offset}, size {size}, stride {stride}) reaches element {last} "
                f"of a storage of {storage.numel}"
            )
        return _Tensor(storage, offset, size, stride)

    def build(self):
        state, target = self.stack.pop(), self.stack[-1]
        if not isinstance(target, OrderedDict) or not isinstance(state, dict):
            self.fail(f"BUILD only sets attributes of an OrderedDict, not of {_describe(target)}")
        # the state is {'_metadata': ...}: module versions, which we drop

    def setitems(self, items: list):
        target = self.stack[-1]
        if not isinstance(target, dict) or len(items) % 2:
            self.fail(f"SETITEM(S) needs a dict and key/value pairs, got {_describe(target)}")
        for key, value in zip(items[::2], items[1::2], strict=True):
            if not isinstance(key, (str, int)):
                self.fail(f"dict key must be a str or an int, got {_describe(key)}")
            target[key] = value

    def appends(self, items: list):
        if not isinstance(self.stack[-1], list):
            self.fail(f"APPEND(S) needs a list, got {_describe(self.stack[-1])}")
        self.stack[-1].extend(items)

    def persid(self):
        pid = self.stack.pop()
        if self.persistent_load is None:
            self.fail("no persistent id is expected in this pickle")
        self.stack.append(self.persistent_load(pid, self.fail))

    def text(self, n: int) -> str:
        try:
            return self.stream.read(n, "a string").decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.fail("a string that is not UTF-8")


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_counts(xs) -> bool:
    return isinstance(xs, tuple) and len(xs) <= 64 and all(_is_count(x) for x in xs)


_STOP = object()
_HANDLERS: dict[bytes, Callable[[_Machine], object]] = {
    b"\x80": _Machine.proto,  # PROTO
    b"c": _Machine.global_,  # GLOBAL
    b"q": lambda m: m.put(m._u("<B", "memo index")),  # BINPUT
    b"r": lambda m: m.put(m._u("<I", "memo index")),  # LONG_BINPUT
    b"h": lambda m: m.get(m._u("<B", "memo index")),  # BINGET
    b"j": lambda m: m.get(m._u("<I", "memo index")),  # LONG_BINGET
    b")": lambda m: m.stack.append(()),  # EMPTY_TUPLE
    b"}": lambda m: m.stack.append({}),  # EMPTY_DICT
    b"]": lambda m: m.stack.append([]),  # EMPTY_LIST
    b"(": lambda m: (m.marks.append(m.stack), setattr(m, "stack", [])),  # MARK
    b"t": lambda m: m.push(tuple(m._pop_mark())),  # TUPLE (pops the mark first, then pushes)
    b"\x85": lambda m: m.tuple_n(1),  # TUPLE1
    b"\x86": lambda m: m.tuple_n(2),  # TUPLE2
    b"\x87": lambda m: m.tuple_n(3),  # TUPLE3
    b"R": _Machine.reduce,  # REDUCE
    b"b": _Machine.build,  # BUILD
    b"s": lambda m: m.setitems([m.stack.pop(-2), m.stack.pop()]),  # SETITEM
    b"u": lambda m: m.setitems(m._pop_mark()),  # SETITEMS
    b"a": lambda m: m.appends([m.stack.pop()]),  # APPEND
    b"e": lambda m: m.appends(m._pop_mark()),  # APPENDS
    b"X": lambda m: m.stack.append(m.text(m._u("<I", "string length"))),  # BINUNICODE
    b"U": lambda m: m.stack.append(m.text(m._u("<B", "string length"))),  # SHORT_BINSTRING
    b"J": lambda m: m.stack.append(m._u("<i", "int")),  # BININT
    b"K": lambda m: m.stack.append(m._u("<B", "int")),  # BININT1
    b"M": lambda m: m.stack.append(m._u("<H", "int")),  # BININT2
    b"\x8a": lambda m: m.stack.append(  # LONG1: a length byte, then little-endian two's complement
        int.from_bytes(m.stream.read(m._u("<B", "length"), "a long"), "little", signed=True)
    ),
    b"\x88": lambda m: m.stack.append(True),  # NEWTRUE
    b"\x89": lambda m: m.stack.append(False),  # NEWFALSE
    b"N": lambda m: m.stack.append(None),  # NONE
    b"G": lambda m: m.stack.append(m._u(">d", "float")),  # BINFLOAT
    b"Q": _Machine.persid,  # BINPERSID
    b".": lambda m: _STOP,  # STOP
}


def _storage_reader(seen: dict[str, _Storage], legacy: bool):
    """The BINPERSID rule: a ('storage', type, key, location, numel[, view]) tuple -> a _Storage.

    ``seen`` collects every storage by key, so that two tensors on one storage share it and the
    container can check each storage's bytes once."""

    def load(pid, fail) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = repr(pid[0]) if isinstance(pid, tuple) and pid else _describe(pid)
            fail(f"refuses the persistent id {kind}: only 'storage' ids are known")
        if len(pid) != (6 if legacy else 5):
            fail(f"a storage id has {len(pid)} fields, expected {6 if legacy else 5}")
        kind, cls, key, location, numel = pid[:5]
        if not (isinstance(cls, _Global) and cls.name in _STORAGE_DTYPES):
            fail(f"storage type {_describe(cls)} is not a torch storage class")
        if not isinstance(key, str) or not isinstance(location, str) or not _is_count(numel):
            fail(f"bad storage id {pid!r}")
        dtype = _STORAGE_DTYPES[cls.name]
        root = _Storage(key, dtype, numel, 0, numel)
        if seen.setdefault(key, root) != root:
            fail(f"storage {key!r} is declared twice, as {seen[key]} and as {root}")
        view = pid[5] if legacy else None
        if view is None:
            return root
        # very old files: (view_key, offset, size) of a slice of the root storage
        if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1])):
            fail(f"bad storage view {view!r}")
        if not _is_count(view[2]) or view[1] + view[2] > numel:
            fail(f"storage view {view!r} runs past its storage of {numel}")
        return _Storage(key, dtype, numel, view[1], view[2])

    return load


def _unpickle(stream: _Stream, persistent_load=None):
    return _Machine(stream, persistent_load).run()
