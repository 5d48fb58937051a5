"""read_state_dict: torch.save files read without torch and without pickle, hostile files refused.

The expected values come from torch itself: ``fixtures/make_fixtures.py`` wrote each .pth with
``torch.save`` and, beside it, an .npz of ``tensor.numpy()``. The parity tests at the end write fresh
files with torch where it is installed.
"""

import ast
import io
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rcnn_from_scratch.checkpoints import pickle_machine, torch_format
from rcnn_from_scratch.checkpoints.torch_format import CheckpointError, read_state_dict

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = ["meta", "plain", "big_endian"]
HOSTILE = {  # fixture name -> what the refusal must name
    "os_system": r"global '(os|posix)\.system'",
    "eval": r"global 'builtins\.eval'",
    "popen": r"global 'subprocess\.Popen'",
    "reduce_storage": r"REDUCE refuses to call the global torch\.FloatStorage",
    "persid_not_storage": r"persistent id 'evil'",
    "persid_module": r"persistent id 'module'",
}


def assert_same(got: dict, want) -> None:
    assert list(got) == list(want.keys())
    for name in got:
        a, b = got[name], want[name]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.flags.c_contiguous and a.flags.owndata | (a.base is not None), name
        np.testing.assert_array_equal(a, b, err_msg=name)


# ---- a tiny pickle writer, to make files torch would never write


def op_text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n) if n < 2**31 else b"\x8a\x08" + struct.pack("<q", n)


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def tensor_entry(name, key, numel, size, stride, offset=0, legacy=True) -> bytes:
    """``name``, then a float32 tensor on storage ``key``, which declares ``numel`` elements."""
    pid = op_tuple(
        op_text("storage"), b"ctorch\nFloatStorage\n", op_text(key), op_text("cpu"), op_int(numel),
        *([b"N"] if legacy else []),
    )  # fmt: skip
    args = op_tuple(
        pid + b"Q", op_int(offset), op_tuple(*map(op_int, size)), op_tuple(*map(op_int, stride)),
        b"\x89", b"ccollections\nOrderedDict\n)R",
    )  # fmt: skip
    return op_text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def state_dict_pickle(*entries: bytes) -> bytes:
    return b"\x80\x02ccollections\nOrderedDict\n)R(" + b"".join(entries) + b"u."


def tensor_pickle(*args, **kwargs) -> bytes:
    return state_dict_pickle(tensor_entry(*args, **kwargs))


def legacy_file(object_pickle: bytes, storages: list[tuple[str, int, bytes]]) -> bytes:
    """magic, protocol, sys_info, the object, the key list, then (count, bytes) per storage."""
    head = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, None]
    out = b"".join(pickle.dumps(x, protocol=2) for x in head[:3]) + object_pickle
    out += pickle.dumps([key for key, _, _ in storages], protocol=2)
    for _, count, data in storages:
        out += struct.pack("<q", count) + data
    return out


def pickle_ends(data: bytes, count: int) -> list[int]:
    ends, f = [], io.BytesIO(data)
    for _ in range(count):
        ends.append(1 + max(pos for op, _, pos in pickletools.genops(f) if op.name == "STOP"))
    return ends


# ---- what torch wrote


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("name", GOOD)
def test_fixture_reads_as_torch_read_it(name, layout):
    got = read_state_dict(FIXTURES / f"{name}_{layout}.pth")
    with np.load(FIXTURES / f"{name}.npz") as want:
        assert_same(got, want)


def test_metadata_is_dropped_and_keys_are_kept_verbatim():
    got = read_state_dict(FIXTURES / "meta_legacy.pth")
    assert "_metadata" not in got
    assert "backbone.fpn.inner_blocks.0.weight" in got  # the old name, not remapped here
    assert "rpn.head.conv.0.0.weight" in got


def test_views_into_one_storage_give_the_slice_and_the_transpose():
    got = read_state_dict(FIXTURES / "meta_zip.pth")
    shared = np.arange(12, dtype=np.float32) * 0.5  # what make_fixtures.py saved the views of
    np.testing.assert_array_equal(got["shared.slice"], shared[3:9])
    np.testing.assert_array_equal(got["shared.transposed"], shared.reshape(3, 4).T)
    assert got["shared.transposed"].flags.c_contiguous
    got["shared.slice"][0] = -1  # copies: writing one does not touch the other
    assert got["shared.transposed"][3, 0] == shared[3]  # the same stored element


def test_dtypes_are_the_stored_ones_with_bfloat16_as_float32():
    got = read_state_dict(FIXTURES / "meta_legacy.pth") | read_state_dict(
        FIXTURES / "plain_zip.pth"
    )
    dtypes = {k: v.dtype.name for k, v in got.items()}
    assert dtypes["backbone.body.bn1.num_batches_tracked"] == "int64"
    assert got["backbone.body.bn1.num_batches_tracked"].shape == ()
    assert dtypes["backbone.body.bn1.running_mean"] == "float16"
    assert dtypes["head.bfloat16"] == "float32" and dtypes["head.mask"] == "bool"
    assert [dtypes[f"layer.{t}"] for t in ("int32", "int16", "int8", "uint8")] == [
        "int32", "int16", "int8", "uint8",
    ]  # fmt: skip
    assert got["layer.empty"].shape == (0, 3)


def test_a_zip_holding_one_legacy_file_reads_like_the_file(tmp_path):
    path = tmp_path / "hub.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FIXTURES / "meta_legacy.pth", "meta_legacy.pth")
    with np.load(FIXTURES / "meta.npz") as want:
        assert_same(read_state_dict(path), want)


def test_the_reader_never_uses_pickle(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was called")

    for name in ("load", "loads", "Unpickler", "_Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    read_state_dict(FIXTURES / "meta_legacy.pth")
    read_state_dict(FIXTURES / "meta_zip.pth")
    for module in (torch_format, pickle_machine):  # the file reader and its pickle interpreter
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "pickle" not in imported and "importlib" not in imported, module.__name__


# ---- hostile files


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_hostile_pickle_is_refused_by_name_and_runs_nothing(what, layout, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the markers are relative paths: they would land here
    path = FIXTURES / f"evil_{what}_{layout}.pth"
    with pytest.raises(CheckpointError, match=HOSTILE[what]) as info:
        read_state_dict(path)
    assert path.name in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_a_whole_pickled_module_is_refused_naming_its_class(layout):
    with pytest.raises(CheckpointError, match=r"global 'torch\.nn\.modules\.linear\.Linear'"):
        read_state_dict(FIXTURES / f"whole_module_{layout}.pth")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x80\x02\x93.", "opcode STACK_GLOBAL"),
        (b"\x80\x02cos\nsystem\n.", "global 'os.system'"),
        (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00N.", "protocol 4"),
        (b"\x80\x02]}b.", "BUILD only sets attributes of an OrderedDict, not of a list"),
        (b"\x80\x02]K\x01s.", "SETITEM"),
        (b"\x80\x02h\x05.", "memo entry 5"),
        (b"\x80\x02R.", "too few values"),
        (b"\x80\x02K\x01K\x02.", "more than one value"),
        (b"\x80\x02\x8a\x01\x01Q.", "persistent id"),
    ],
)
def test_the_machine_refuses_bad_programs_by_name(payload, message, tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(legacy_file(payload, []))
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "holds a list, not a state dict"),
        ({"model": {"w": 1}}, r"value of 'model' is a dict, not a tensor \(a checkpoint"),
        ({"w": 1.5}, "value of 'w' is a float"),
    ],
)
def test_an_object_that_is_not_a_dict_of_tensors_is_named(obj, message, tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(legacy_file(pickle.dumps(obj, protocol=2), []))
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)


# ---- damaged files


@pytest.mark.parametrize("name", ["meta_legacy.pth", "meta_zip.pth", "plain_zip.pth"])
def test_every_truncation_is_a_checkpoint_error(name, tmp_path):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    for end in [*range(0, len(data), 37), len(data) - 1]:
        path.write_bytes(data[:end])
        with pytest.raises(CheckpointError, match=name):
            read_state_dict(path)


def test_a_flipped_byte_in_a_storage_count_is_refused(tmp_path):
    data = bytearray((FIXTURES / "meta_legacy.pth").read_bytes())
    first_count = pickle_ends(bytes(data), 5)[-1]  # the storages follow the fifth pickle
    data[first_count] ^= 0x01
    path = tmp_path / "flipped.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"holds \d+ elements, its tensors declared"):
        read_state_dict(path)


def test_a_declared_huge_tensor_is_refused_before_allocating(tmp_path):
    n = 10**12
    path = tmp_path / "huge.pth"
    path.write_bytes(legacy_file(tensor_pickle("w", "0", n, (n,), (1,)), [("0", n, b"\0" * 8)]))
    with pytest.raises(CheckpointError, match="declares 4000000000000 bytes of storage"):
        read_state_dict(path)


def test_a_zero_stride_tensor_far_larger_than_the_file_is_refused(tmp_path):
    size = (10**6, 10**6)  # one element, broadcast to 10**12
    path = tmp_path / "expand.pth"
    path.write_bytes(legacy_file(tensor_pickle("w", "0", 1, size, (0, 0)), [("0", 1, b"\0" * 4)]))
    with pytest.raises(CheckpointError, match="would take 4000000000000 bytes"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("size", "stride", "offset", "message"),
    [
        ((3, 3), (3, 1), 0, "reaches element 8 of a storage of 6"),
        ((2,), (1,), 6, "reaches element 7"),
        ((-1,), (1,), 0, "bad tensor geometry"),
        ((2,), (-1,), 2, "bad tensor geometry"),
    ],
)
def test_views_outside_their_storage_are_refused(size, stride, offset, message, tmp_path):
    path = tmp_path / "view.pth"
    body = tensor_pickle("w", "0", 6, size, stride, offset)
    path.write_bytes(legacy_file(body, [("0", 6, b"\0" * 24)]))
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)


def test_a_zip_entry_shorter_than_its_declared_storage_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/data.pkl", tensor_pickle("w", "0", 6, (6,), (1,), legacy=False))
        zf.writestr("a/data/0", b"\0" * 20)
    with pytest.raises(CheckpointError, match="has 20 bytes, its tensors declared 6 x 4"):
        read_state_dict(path)


def test_a_hand_written_zip_reads_back_its_values(tmp_path):
    # the same writer as the refusals above, so they fail for the reason they state
    path = tmp_path / "ok.pth"
    values = np.arange(6, dtype=np.float32)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/data.pkl", tensor_pickle("w", "0", 6, (2, 2), (1, 3), 1, legacy=False))
        zf.writestr("a/data/0", values.tobytes())
    np.testing.assert_array_equal(read_state_dict(path)["w"], [[1, 4], [2, 5]])


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_refused(seed, tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(seed).bytes(2000))
    with pytest.raises(CheckpointError):
        read_state_dict(path)


def test_other_files_are_refused_with_what_they_are(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    np.save(tmp_path / "a.npy", np.zeros(3))
    np.savez(tmp_path / "a.npz", x=np.zeros(3), y=np.ones(2))
    with pytest.raises(CheckpointError, match="is empty"):
        read_state_dict(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match=r"NumPy \.npy"):
        read_state_dict(tmp_path / "a.npy")
    with pytest.raises(CheckpointError, match="zip without"):
        read_state_dict(tmp_path / "a.npz")
    with pytest.raises(CheckpointError, match="is a directory"):
        read_state_dict(tmp_path)
    with pytest.raises(FileNotFoundError):  # documented: a missing path is not a bad checkpoint
        read_state_dict(tmp_path / "missing.pth")


def test_peak_memory_is_the_output_plus_one_storage(tmp_path):
    import tracemalloc

    n, count = 2**18, 8  # eight 1 MiB storages
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(n).astype(np.float32) for _ in range(count)]
    body = state_dict_pickle(*(tensor_entry(f"t{i}", str(i), n, (n,), (1,)) for i in range(count)))
    path = tmp_path / "big.pth"
    path.write_bytes(legacy_file(body, [(str(i), n, a.tobytes()) for i, a in enumerate(arrays)]))
    tracemalloc.start()
    got = read_state_dict(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [np.array_equal(got[f"t{i}"], a) for i, a in enumerate(arrays)] == [True] * count
    one = 4 * n
    assert peak < count * one + 2.5 * one  # not two copies of the whole file


# ---- parity with torch, where installed


def random_state_dict(torch, seed: int):
    g = torch.Generator().manual_seed(seed)
    dtypes = [torch.float32, torch.float16, torch.float64, torch.int64, torch.int32, torch.int8,
              torch.uint8, torch.bool, torch.bfloat16, torch.int16]  # fmt: skip
    sd, shared = {}, torch.randn(64, generator=g)
    for i in range(50):
        dtype = dtypes[i % len(dtypes)]
        shape = tuple(int(s) for s in torch.randint(1, 5, (i % 4,), generator=g))
        t = (torch.randn(shape, generator=g) * 50).to(dtype)
        if i % 7 == 3:
            t = t.t() if t.dim() == 2 else t
        sd[f"layer{i}.{'weight' if i % 2 else 'running_var'}"] = t
    sd["big.weight"] = torch.randn(300, 250, generator=g)  # numel > 65535: a BININT
    sd["shared.a"], sd["shared.b"] = shared[5:20], shared.view(8, 8)[:, 2:5]
    sd["param"] = torch.nn.Parameter(torch.randn(3, generator=g))
    return sd


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_state_dicts_read_as_torch_wrote_them(seed, legacy, tmp_path):
    torch = pytest.importorskip("torch")
    sd = random_state_dict(torch, seed)
    path = tmp_path / "r.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    ops = {op.name for op, _, _ in pickletools.genops(_object_pickle(path, legacy))}
    assert {"LONG_BINPUT", "BININT"} <= ops  # more than 256 memo entries, a numel past 2**16
    want = {k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).numpy()
            for k, v in sd.items()}  # fmt: skip
    assert_same(read_state_dict(path), want)


def _object_pickle(path: Path, legacy: bool) -> io.BytesIO:
    if not legacy:
        with zipfile.ZipFile(path) as zf:
            return io.BytesIO(zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl"))))
    data = path.read_bytes()
    ends = pickle_ends(data, 4)
    return io.BytesIO(data[ends[2] : ends[3]])
