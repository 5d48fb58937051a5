"""R-CNN's SVMs and ridge box regression: closed forms, hard-negative mining, scikit-learn parity."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from rcnn_from_scratch.box_coder import BoxCoder
from rcnn_from_scratch.heads.box_regression import RidgeBoxRegressor, fit_ridge
from rcnn_from_scratch.heads.svm import (
    SVMHead,
    _squared_hinge,
    train_linear_svm,
    train_svm_with_hard_negatives,
)


def blobs(rng, n=200, d=5, gap=3.0):
    x = np.concatenate([rng.normal(gap, 1, (n, d)), rng.normal(-gap, 1, (n, d))])
    return x, np.concatenate([np.ones(n), -np.ones(n)])


def test_squared_hinge_gradient_equals_numerical_gradient():
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 20, 4, gap=0.5)
    err = check_grad(lambda p: _squared_hinge(p, x, y, 2.0)[0],
                     lambda p: _squared_hinge(p, x, y, 2.0)[1], rng.normal(size=5))  # fmt: skip
    assert err < 1e-4


def test_separable_data_is_separated_with_margin():
    x, y = blobs(np.random.default_rng(1))
    svm = train_linear_svm(x, y, c=10.0)
    assert np.all(y * svm.score(x) > 0.9)


def test_svm_matches_scikit_learn_linear_svc():
    svm_module = pytest.importorskip("sklearn.svm")
    x, y = blobs(np.random.default_rng(2), gap=0.7)
    ours = train_linear_svm(x, y, c=0.5)
    # liblinear regularises its bias unless the bias feature is scaled up: make it (almost) free
    theirs = svm_module.LinearSVC(
        C=0.5,
        loss="squared_hinge",
        dual=False,
        intercept_scaling=1000.0,
        tol=1e-12,
        max_iter=100000,
    ).fit(x, y)
    np.testing.assert_allclose(ours.weight, theirs.coef_[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.bias, theirs.intercept_[0], rtol=1e-3, atol=1e-3)


def test_hard_negative_mining_grows_the_cache_with_hard_examples():
    rng = np.random.default_rng(3)
    pos = rng.normal(1.5, 1, (50, 4))
    neg = rng.normal(-1.5, 1, (5000, 4))
    svm, sizes = train_svm_with_hard_negatives(pos, neg, rng, initial_negatives=50, rounds=4)
    assert sizes[0] == 50 and len(sizes) >= 2 and sizes[1] != 50
    full = train_linear_svm(np.concatenate([pos, neg]), np.r_[np.ones(50), -np.ones(5000)])
    # mining finds (almost) the same separator as training on every negative
    assert np.mean(np.sign(svm.score(neg)) == np.sign(full.score(neg))) > 0.98


def test_svm_head_puts_background_first_and_round_trips_its_state():
    x, y = blobs(np.random.default_rng(4))
    head = SVMHead([train_linear_svm(x, y), train_linear_svm(x, -y)])
    s = head.scores(x[:3])
    assert s.shape == (3, 3) and np.all(s[:, 0] == 0)
    again = SVMHead.from_state(head.state())
    np.testing.assert_allclose(again.scores(x[:3]), s, rtol=1e-5, atol=1e-5)


def test_svm_rejects_one_class_labels():
    with pytest.raises(ValueError, match="both classes"):
        train_linear_svm(np.zeros((3, 2)), np.ones(3))


def test_ridge_without_penalty_is_least_squares():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(100, 3))
    t = x @ rng.normal(size=(3, 4)) + 0.7
    w = fit_ridge(x, t, lam=0.0)
    np.testing.assert_allclose(np.hstack([x, np.ones((100, 1))]) @ w, t, atol=1e-9)


def test_box_regressor_learns_a_linear_shift_per_class():
    rng = np.random.default_rng(6)
    n = 400
    xy = rng.uniform(0, 80, (n, 2))
    gt = np.hstack([xy, xy + rng.uniform(10, 30, (n, 2))])
    proposals = gt + rng.normal(0, 2, (n, 4))
    deltas = BoxCoder((1, 1, 1, 1)).encode(gt, proposals)
    features = np.hstack([deltas, rng.normal(size=(n, 3))])  # the features reveal the deltas
    labels = rng.integers(1, 3, n)
    reg = RidgeBoxRegressor(2, lam=1e-6).fit(features, proposals, gt, labels)
    np.testing.assert_allclose(reg.predict(features, proposals, labels), gt, atol=1e-3)
    # a class never seen keeps its proposals
    reg3 = RidgeBoxRegressor(3, lam=1.0).fit(features, proposals, gt, labels)
    np.testing.assert_allclose(
        reg3.predict(features[:2], proposals[:2], [3, 3]), proposals[:2], atol=1e-4
    )
