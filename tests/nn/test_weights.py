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
