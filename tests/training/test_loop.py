"""The training loop: it lowers a loss, stops clearly on NaN, and a seed makes it bit-identical."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import SGD, Linear, ReLU, Sequential, softmax_cross_entropy
from rcnn_from_scratch.training.loop import TrainingDiverged, run_training, seed_everything


def tiny_run(seed: int, steps: int = 30):
    rng = seed_everything(seed)
    net = Sequential(Linear(2, 16, rng=rng), ReLU(), Linear(16, 2, rng=rng))
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)

    def step(_):
        x = rng.standard_normal((32, 2)).astype(np.float32)
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)  # XOR-like: needs the hidden layer
        opt.zero_grad()
        loss, dlogits = softmax_cross_entropy(net(x), y)
        net.backward(dlogits)
        opt.step()
        return {"loss": loss}

    history = run_training(step, steps, progress=False)
    return net, history


def test_training_lowers_the_loss():
    _, history = tiny_run(0, steps=200)
    first = np.mean([h["loss"] for h in history[:20]])
    last = np.mean([h["loss"] for h in history[-20:]])
    assert last < 0.6 * first


def test_the_same_seed_gives_bit_identical_parameters_and_losses():
    a, ha = tiny_run(7)
    b, hb = tiny_run(7)
    assert ha == hb
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    _, hc = tiny_run(8)
    assert hc != ha


def test_a_nan_loss_stops_training_naming_the_step():
    with pytest.raises(TrainingDiverged, match="'rpn' became nan at step 3"):
        run_training(lambda s: {"rpn": float("nan") if s == 3 else 1.0}, 10, progress=False)


def test_an_infinite_loss_stops_training_too():
    with pytest.raises(TrainingDiverged, match="'mask' became inf at step 0"):
        run_training(lambda s: {"mask": np.float32(np.inf)}, 2, progress=False)


def test_a_step_that_returns_no_dict_is_an_error():
    with pytest.raises(ValueError, match="dict of named losses"):
        run_training(lambda s: 1.0, 2, progress=False)


def test_seed_everything_gives_a_generator_and_seeds_the_global_state():
    a = seed_everything(5).random(3)
    legacy = np.random.random()  # noqa: NPY002
    b = seed_everything(5).random(3)
    assert np.array_equal(a, b) and np.random.random() == legacy  # noqa: NPY002
    assert not np.array_equal(seed_everything(6).random(3), a)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_the_progress_bar_runs(capsys):
    history = run_training(lambda s: {"loss": 1.0 / (s + 1)}, 3, description="demo")
    assert [h["loss"] for h in history] == [1.0, 0.5, 1.0 / 3]


def test_resuming_runs_only_the_remaining_steps():
    seen = []
    run_training(lambda s: seen.append(s) or {"loss": 0.0}, 5, start_step=3, progress=False)
    assert seen == [3, 4]


def test_a_time_limit_stops_before_the_next_step():
    import time

    def slow(step):
        time.sleep(0.05)
        return {"loss": 1.0}

    history = run_training(slow, 100, progress=False, time_limit=0.12)
    assert 1 <= len(history) <= 4
