"""Weights on disk: round trip, no pickle, atomic writes, a clear error for every broken file."""

import os

import numpy as np
import pytest

from rcnn_from_scratch.backbones.convnet import make_backbone
from rcnn_from_scratch.nn import WeightsError, load_weights, save_weights


@pytest.fixture
def state():
    return make_backbone((4, 8), seed=0).state_dict()


def test_round_trip_keeps_arrays_and_config(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state, {"channels": [4, 8], "seed": 0})
    loaded, config = load_weights(path, {k: v.shape for k, v in state.items()})
    assert config == {"channels": [4, 8], "seed": 0}
    assert set(loaded) == set(state)
    for k in state:
        np.testing.assert_array_equal(loaded[k], state[k])


def test_a_module_saves_and_loads_into_a_fresh_model(tmp_path):
    a, b = make_backbone((4, 8), seed=0), make_backbone((4, 8), seed=1)
    path = save_weights(tmp_path / "w.npz", a, {"channels": [4, 8]})
    state, _ = load_weights(path, expected=b)
    b.load_state_dict(state)
    x = np.ones((1, 3, 8, 8), np.float32)
    np.testing.assert_array_equal(a(x), b(x))


def test_a_newer_format_version_is_refused(tmp_path, state):
    path = tmp_path / "w.npz"
    save_weights(path, state)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["__format__"] = np.array(99)
    np.savez(path, **arrays)
    with pytest.raises(WeightsError, match="format version 99"):
        load_weights(path)


def test_an_entry_disagreeing_with_the_manifest_is_named(tmp_path, state):
    path = tmp_path / "w.npz"
    save_weights(path, state)
    with np.load(path) as data:
        arrays = dict(data)
    del arrays["3.bias"]
    np.savez(path, **arrays)
    with pytest.raises(WeightsError, match="'3.bias' listed in the manifest is missing"):
        load_weights(path)


def test_config_must_be_json(tmp_path, state):
    with pytest.raises(ValueError, match="JSON"):
        save_weights(tmp_path / "w.npz", state, {"rng": np.random.default_rng(0)})
    assert not list(tmp_path.iterdir())


def test_files_load_without_pickle(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    with np.load(path, allow_pickle=False) as data:
        assert "__manifest__" in data.files


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(tmp_path / "none.npz")


def test_truncated_file(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_weights(path)


def test_foreign_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(WeightsError, match="truncated or not a weights file"):
        load_weights(junk)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(WeightsError, match="not a rcnn-from-scratch weights file"):
        load_weights(other)


def test_missing_key_and_wrong_shape_are_named(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    expected = {k: v.shape for k, v in state.items()}
    with pytest.raises(WeightsError, match="missing parameter"):
        load_weights(path, {**expected, "head.weight": (2, 2)})
    with pytest.raises(WeightsError, match=r"'0.weight' has shape"):
        load_weights(path, {**expected, "0.weight": (1, 2, 3, 3)})


def test_a_crash_while_writing_leaves_the_old_file_intact(tmp_path, state, monkeypatch):
    path = save_weights(tmp_path / "w.npz", state, {"version": "old"})

    def crash_half_way(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_weights(path, state, {"version": "new"})
    assert load_weights(path)[1] == {"version": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left behind


def test_a_missing_directory_is_named(tmp_path, state):
    with pytest.raises(ValueError, match="does not exist"):
        save_weights(tmp_path / "nowhere" / "w.npz", state)


def _rewrite(path, replace: dict[str, bytes]) -> None:
    """Rewrite the archive at ``path`` with some members' raw ``.npy`` bytes replaced."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_a_tiny_file_declaring_a_huge_array_is_refused_before_allocating(tmp_path, state):
    import io

    path = save_weights(tmp_path / "w.npz", state)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header,
        {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)},  # 7 TiB
    )
    _rewrite(path, {"0.weight.npy": header.getvalue() + bytes(16)})
    with pytest.raises(WeightsError, match=r"'0.weight' declares shape \(1000000, 1000000\)"):
        load_weights(path)


def test_an_npy_renamed_npz_is_named_as_such(tmp_path):
    path = tmp_path / "w.npz"
    np.save(tmp_path / "w.npy", np.zeros(3))
    (tmp_path / "w.npy").rename(path)
    with pytest.raises(WeightsError, match=r"not a weights file \(an .npy array, not an .npz"):
        load_weights(path)


@pytest.mark.parametrize("data", [os.urandom(300), b"", b"PK\x03\x04" + bytes(40)])
def test_random_bytes_are_not_a_zip_archive(tmp_path, data):
    path = tmp_path / "junk.npz"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match=r"not a weights file \(not a zip archive\)"):
        load_weights(path)


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros(4, complex), "holds complex values"),
        (np.zeros(4, bool), "holds bool values"),
        (np.array(["abcd"] * 4), "holds <U4 values"),
        (np.array([0, np.nan, 0, 0], np.float32), "holds 1 NaN or infinite"),
        (np.array([0, 0, np.inf, 0]), "holds 1 NaN or infinite"),
        (np.array([None] * 4, object), "pickled"),
    ],
)
def test_non_numeric_complex_bool_or_non_finite_arrays_are_refused_by_name(
    tmp_path, state, value, message
):
    state = dict(state)
    name = next(k for k, v in state.items() if v.shape == (4,))
    state[name] = np.zeros(4, np.float32)
    path = save_weights(tmp_path / "w.npz", state)
    _rewrite(path, {f"{name}.npy": _npy(value)})
    with pytest.raises(WeightsError, match=f"'{name}'.*{message}|{message}"):
        load_weights(path)


def test_an_array_the_manifest_does_not_list_is_refused(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    _rewrite(path, {"smuggled.npy": _npy(np.zeros(2))})
    with pytest.raises(WeightsError, match="'smuggled'.* not listed in the manifest"):
        load_weights(path)


def test_a_member_that_is_not_an_array_is_refused(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    _rewrite(path, {"notes.txt": b"hello"})
    with pytest.raises(WeightsError, match="'notes.txt' is no array"):
        load_weights(path)


def test_a_corrupt_array_header_is_a_weights_error(tmp_path, state):
    path = save_weights(tmp_path / "w.npz", state)
    name = next(iter(state))
    _rewrite(path, {f"{name}.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage"})
    with pytest.raises(WeightsError, match="truncated or not a weights file"):
        load_weights(path)
