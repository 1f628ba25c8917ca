"""ntklib.li20_paper against oracles: brute-force distances, a dense eigendecomposition, and the
SGD theorem's per-batch condition checked over every batch of a small problem."""

import itertools

import jax
import numpy as np
import pytest

from ntklib import data
from ntklib import li20_paper as lp


def test_cluster_geometry_brute_force():
    c = data.clusterable(60, 5, num_clusters=4, num_classes=2, noise=0.2, key=jax.random.key(0))
    g = lp.cluster_geometry(c.X, c.cluster, c.centers)
    X, C, k = (np.asarray(a, np.float64) for a in (c.X, c.centers, c.cluster))
    k = k.astype(int)
    assert g.radius == pytest.approx(max(np.linalg.norm(X[i] - C[k[i]]) for i in range(60)), rel=1e-6)
    assert g.separation == pytest.approx(min(np.linalg.norm(C[a] - C[b]) for a in range(4) for b in range(4) if a != b), rel=1e-6)
    with pytest.raises(ValueError, match="cluster"):
        lp.cluster_geometry(c.X, np.zeros(3, int), c.centers)


def test_bound_terms_dense_oracle():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 30))
    K = A @ A.T
    y = rng.choice([-1.0, 1.0], 12)
    t = lp.bound_terms(K, y, 4)
    lam, U = np.linalg.eigh(K)
    lam, U = lam[::-1], U[:, ::-1]
    c = U.T @ y
    assert t.alpha == pytest.approx(np.sqrt(lam[3]), rel=1e-5)
    assert t.bias == pytest.approx(np.linalg.norm(c[4:]) / np.sqrt(12), rel=1e-5)
    assert t.complexity == pytest.approx(np.linalg.norm(c[:4]) / (np.sqrt(lam[3]) * np.sqrt(12)), rel=1e-5)
    from ntklib import generalization
    assert lp.bound_terms(generalization.spectrum(K), y, 4).total == pytest.approx(t.total, rel=1e-6)


@pytest.mark.parametrize("b", [1, 2, 3])
def test_sgd_step_limit_satisfies_the_per_batch_condition(b):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 7))
    eta = lp.sgd_step_limit(X, b)
    worst = max(np.linalg.norm(X[list(B)], 2) ** 2 for B in itertools.combinations(range(5), b))
    assert eta * 5 / b * worst <= 1 + 1e-12
    if b == 1:  # exact for single examples: the condition is tight
        assert eta * 5 * worst == pytest.approx(1.0)


def test_corrupt_per_cluster_exact_count_in_every_cluster():
    # oracle: counting by hand, cluster by cluster; a global corrupt_labels would pass the total
    # count but not the per-cluster one (checked to fail below for some key)
    c = data.clusterable(150, 5, num_clusters=10, num_classes=2, noise=0.2, key=jax.random.key(0))
    y, k = np.asarray(c.y), np.asarray(c.cluster)
    for rho in (0.0, 0.2, 0.4):
        out = lp.corrupt_per_cluster(y, k, rho, key=jax.random.key(1), num_classes=2)
        new, mask = np.asarray(out.y), np.asarray(out.corrupted)
        assert np.array_equal(mask, new != y)  # exactly the flagged labels changed
        for g in np.unique(k):
            assert mask[k == g].sum() == round(rho * np.sum(k == g))
    spread = [np.bincount(k[np.asarray(data.corrupt_labels(y, 0.4, key=jax.random.key(s), num_classes=2).corrupted)],
                          minlength=10) for s in range(5)]
    assert any(len(set(b)) > 1 for b in spread)  # the global model does vary per cluster
    with pytest.raises(ValueError, match="cluster"):
        lp.corrupt_per_cluster(y, k[:3], 0.2, key=jax.random.key(1), num_classes=2)
    with pytest.raises(ValueError, match="fraction"):
        lp.corrupt_per_cluster(y, k, 1.5, key=jax.random.key(1), num_classes=2)


def test_early_stopping_time_block_oracle():
    # Exactly clustered data (every point on its center, equal sizes): the data's Gram is the
    # centers' Gram blown up by blocks, its top K eigenvalues are (n/K) lambda_i(K_C), and the
    # block ratio is 1; the predicted time is K / (eta n lambda_min(K_C)).
    rng = np.random.default_rng(1)
    B = rng.standard_normal((3, 6))
    KC = B @ B.T
    idx = np.repeat(np.arange(3), 4)           # 3 clusters of 4 points
    K0 = KC[np.ix_(idx, idx)]
    t = lp.early_stopping_time(KC, 12, 0.1, K0=K0)
    lam_min = np.linalg.eigvalsh(KC)[0]
    assert t.num_clusters == 3
    assert t.lambda_centers == pytest.approx(lam_min, rel=1e-10)
    assert t.steps == pytest.approx(3 / (0.1 * 12 * lam_min), rel=1e-10)
    assert t.block_ratio == pytest.approx(1.0, rel=1e-8)
    assert np.isnan(lp.early_stopping_time(KC, 12, 0.1).block_ratio)
    with pytest.raises(ValueError, match="singular"):
        lp.early_stopping_time(np.ones((2, 2)), 4, 0.1)
    with pytest.raises(ValueError, match="smaller than the K"):
        lp.early_stopping_time(KC, 2, 0.1)
    with pytest.raises(ValueError, match="lr"):
        lp.early_stopping_time(KC, 12, 0.0)
    with pytest.raises(ValueError, match="K0"):
        lp.early_stopping_time(KC, 12, 0.1, K0=np.eye(5))
