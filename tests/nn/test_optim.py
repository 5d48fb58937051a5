"""Optimisers against PyTorch's update rules, and the learning-rate schedule."""

import numpy as np
import pytest

from rcnn_from_scratch.nn import SGD, Adam, Parameter, WarmupStepSchedule


def run(opt_cls, steps=5, **kw):
    rng = np.random.default_rng(0)
    p = Parameter(rng.standard_normal(4))
    opt = opt_cls([p], **kw)
    grads = rng.standard_normal((steps, 4))
    for g in grads:
        opt.zero_grad()
        p.grad += g + p.data  # a gradient that depends on the parameter
        opt.step()
    return p.data, grads


def reference_sgd(lr, momentum, wd, steps=5):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(4)
    grads = rng.standard_normal((steps, 4))
    v = np.zeros(4)
    for g in grads:
        d = g + p + wd * p
        v = momentum * v + d
        p = p - lr * v
    return p


def test_sgd_follows_the_pytorch_rule_by_hand():
    ours, _ = run(SGD, lr=0.1, momentum=0.9, weight_decay=0.01)
    np.testing.assert_allclose(ours, reference_sgd(0.1, 0.9, 0.01))


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_optimisers_match_pytorch(opt_name):
    torch = pytest.importorskip("torch")
    kw = {"lr": 0.05, "weight_decay": 0.01}
    if opt_name == "SGD":
        kw["momentum"] = 0.9
    ours, grads = run({"SGD": SGD, "Adam": Adam}[opt_name], **kw)
    p = torch.tensor(np.random.default_rng(0).standard_normal(4), requires_grad=True)
    opt = getattr(torch.optim, opt_name)([p], **kw)
    for g in grads:
        opt.zero_grad()
        p.grad = torch.tensor(g) + p.detach()
        opt.step()
    np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-10)


def test_schedule_warms_up_then_steps_down():
    s = WarmupStepSchedule(
        0.02, milestones=(100, 200), gamma=0.1, warmup_steps=10, warmup_factor=0.1
    )
    assert s(0) == pytest.approx(0.002)
    assert s(5) == pytest.approx(0.02 * (0.1 * 0.5 + 0.5))
    assert (
        s(10) == pytest.approx(0.02)
        and s(150) == pytest.approx(0.002)
        and s(250) == pytest.approx(0.0002)
    )


def test_an_optimiser_without_parameters_is_an_error():
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)


def test_adam_state_round_trips_so_a_resumed_run_takes_the_same_steps():
    rng = np.random.default_rng(0)
    a, b = Parameter(rng.standard_normal(5)), Parameter(np.zeros(5))
    grads = rng.standard_normal((4, 5))
    opt = Adam([a], lr=0.1)
    for g in grads[:2]:
        a.grad[...] = g
        opt.step()
    b.data[...] = a.data
    resumed = Adam([b], lr=0.1)
    resumed.load_state_dict({k: v.copy() for k, v in opt.state_dict().items()})
    for g in grads[2:]:
        a.grad[...] = g
        b.grad[...] = g
        opt.step()
        resumed.step()
    np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="m.0"):
        resumed.load_state_dict({"t": np.array(1)})
