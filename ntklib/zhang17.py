r"""Chapter 0 beside Zhang et al. (2017): their published numbers, steps-to-fit against the share
of random labels over several seeds, and a trend check with its uncertainty.

The network and data are the chapter's: a :class:`~ntklib.shallow.ShallowNet` trained by
full-batch GD with ``lr = 1/lambda_max(H(theta_0))`` on :math:`\pm1` labels; a share ``p`` of random
labels replaces each of ``round(p n)`` labels by a fair coin, i.e. flips ``round(p n / 2)`` of them
(for two classes a fair coin is wrong half the time).

References:
  Zhang, C., Bengio, S., Hardt, M., Recht, B. and Vinyals, O. (2017). Understanding deep learning
  requires rethinking generalization. ICLR 2017, arXiv:1611.03530.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from jax.scipy.linalg import solve_triangular

from . import _random
from ._checks import as_key, as_matrix, as_vector, check_positive
from .data import corrupt_labels
from .ntk import gram
from .shallow import ShallowNet, train_gd

__all__ = ["ZHANG_TABLE1", "steps_to_fit", "CorruptionSweep", "corruption_sweep", "Trend", "trend",
           "ReluInterpolant", "relu_interpolant", "interpolant_apply"]

ZHANG_TABLE1 = {
    # Zhang et al. (2017), Table 1, CIFAR-10, the Inception network (1,649,402 parameters):
    # (random crop, weight decay, labels) -> (train accuracy %, test accuracy %).
    ("yes", "yes", "true"): (100.0, 89.05),
    ("yes", "no", "true"): (100.0, 89.31),
    ("no", "yes", "true"): (100.0, 86.03),
    ("no", "no", "true"): (100.0, 85.75),
    ("no", "no", "random"): (100.0, 9.78),
}
"""Zhang et al.'s Table 1 rows for Inception on CIFAR-10 (50 000 training images, 10 classes)."""

ZHANG_INCEPTION_PARAMS = 1_649_402


def _odd_flip(y, fraction, key):
    y01 = np.asarray((np.asarray(y) > 0).astype(int))
    flipped = corrupt_labels(y01, fraction / 2.0, key=key, num_classes=2).y
    return jnp.where(jnp.asarray(flipped) == 1, 1.0, -1.0).astype(jnp.asarray(y).dtype)


def steps_to_fit(net: ShallowNet, params0, X, y, *, steps: int, every: int) -> int | None:
    r"""The first multiple of ``every`` at which GD reaches 100% training accuracy (``None`` if
    it does not within ``steps``).

    GD on :math:`\tfrac12\lVert f(X) - y\rVert^2` with ``lr = 1/lambda_max`` of the NTK Gram at
    ``params0``; the accuracy is that of :math:`\operatorname{sign} f(x_i)` against ``y``. Stops
    at the first hit.

    Args:
      net: the network.
      params0: its initialization.
      X: ``(n, d)`` inputs.
      y: ``(n,)`` labels in :math:`\{-1, +1\}`.
      steps: the budget of GD steps.
      every: steps between two accuracy measurements (the resolution of the answer).

    Returns:
      ``int`` or ``None``.
    """
    fn = "steps_to_fit"
    check_positive(fn, "steps", steps, integer=True)
    check_positive(fn, "every", every, integer=True)
    yv = jnp.asarray(y)
    if not bool(jnp.all(jnp.abs(yv) == 1.0)):
        raise ValueError(f"{fn}: y must hold labels -1 and +1 (got other values); map classes to signs first.")
    lr = 1.0 / float(np.linalg.eigvalsh(np.asarray(gram(net, params0, X), np.float64))[-1])
    params = params0
    for t in range(every, steps + 1, every):
        params = train_gd(net, params, X, y, lr=lr, steps=every).params
        if bool(jnp.all(jnp.sign(net.apply(params, X)) == yv)):
            return t
    return None


class CorruptionSweep(NamedTuple):
    """Steps to fit for each share of random labels and seed.

    Attributes:
      fractions: ``(F,)`` shares of random labels.
      steps: ``(seeds, F)`` float array, steps to 100% training accuracy (NaN where not reached).
      budget: the GD budget.
      every: the resolution.
    """

    fractions: np.ndarray
    steps: np.ndarray
    budget: int
    every: int


def corruption_sweep(net: ShallowNet, X, y, fractions, *, seeds: int, steps: int,
                     every: int, keys: Callable = jax.random.key) -> CorruptionSweep:
    r"""Steps to fit against the share of random labels, for ``seeds`` seeds.

    Seed ``s`` draws the initialization from ``keys(s)`` and the corrupted labels from
    ``keys(1000 + s)``; every share uses the same initialization within a seed, so
    differences across shares are due to the labels alone.

    Args:
      net: the network.
      X: ``(n, d)`` inputs.
      y: ``(n,)`` clean labels in :math:`\{-1, +1\}`.
      fractions: shares of random labels in ``[0, 1]``.
      seeds: number of seeds, ``>= 1``.
      steps, every: as in :func:`steps_to_fit`.
      keys: ``keys(s)`` makes the key of seed ``s`` (default ``jax.random.key``; the notebooks
        pass :func:`ntklib.config.key`, so that ``NTKLIB_SEED`` shifts the draws).

    Returns:
      :class:`CorruptionSweep`.
    """
    fn = "corruption_sweep"
    check_positive(fn, "seeds", seeds, integer=True)
    try:
        fr = np.asarray([float(p) for p in fractions])
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: fractions must be a sequence of numbers in [0, 1], got "
                         f"{fractions!r}.") from None
    if fr.size == 0 or not np.all((fr >= 0) & (fr <= 1)):
        raise ValueError(f"{fn}: fractions must be a non-empty sequence of shares of random "
                         f"labels in [0, 1], got {fractions!r}.")
    X = as_matrix(fn, "X", X)
    out = np.full((seeds, fr.size), np.nan)
    d = X.shape[1]
    for s in range(seeds):
        params0 = net.init(d, key=keys(s))
        for j, p in enumerate(fr):
            yp = _odd_flip(y, p, keys(1000 + s))
            hit = steps_to_fit(net, params0, X, yp, steps=steps, every=every)
            out[s, j] = np.nan if hit is None else hit
    return CorruptionSweep(fr, out, int(steps), int(every))


class Trend(NamedTuple):
    """Least-squares trend of the steps to fit against the share of random labels.

    Attributes:
      mean, std: ``(F,)`` mean and standard deviation over seeds.
      slope: slope of the least-squares line through all ``(fraction, steps)`` runs.
      slope_se: its standard error (from the residuals, ``seeds * F - 2`` degrees of freedom).
      increasing: ``slope - 2 * slope_se > 0``: a positive trend at about two standard errors.
      monotone_means: the seed means increase with the share at every step.
    """

    mean: np.ndarray
    std: np.ndarray
    slope: float
    slope_se: float
    increasing: bool
    monotone_means: bool


def trend(sweep: CorruptionSweep) -> Trend:
    """The trend of :class:`CorruptionSweep` (every run must have fitted: no NaN).

    >>> sw = CorruptionSweep(np.array([0.0, 0.5, 1.0]), np.array([[10., 20., 30.], [12., 22., 28.]]), 100, 1)
    >>> t = trend(sw); round(t.slope, 6), t.increasing, t.monotone_means
    (18.0, True, True)
    """
    if not all(hasattr(sweep, f) for f in ("steps", "fractions")):
        raise ValueError(f"trend: sweep must be the CorruptionSweep that corruption_sweep "
                         f"returns, got {type(sweep).__name__}.")
    S = np.asarray(sweep.steps, np.float64)
    if np.isnan(S).any():
        raise ValueError("trend: some runs did not fit within the budget; raise steps before reading a trend.")
    seeds, F = S.shape
    x = np.tile(sweep.fractions, seeds)
    v = S.ravel()
    if x.size < 3 or np.ptp(x) == 0:
        raise ValueError("trend: need at least two distinct fractions and three runs.")
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    resid = v - A @ coef
    s2 = float(resid @ resid) / max(x.size - 2, 1)
    se = float(np.sqrt(s2 / np.sum((x - x.mean()) ** 2)))
    mean = S.mean(axis=0)
    return Trend(mean, S.std(axis=0, ddof=1) if seeds > 1 else np.zeros(F), float(coef[1]), se,
                 bool(coef[1] - 2 * se > 0), bool(np.all(np.diff(mean) > 0)))


class ReluInterpolant(NamedTuple):
    r"""The network :math:`c(x) = \sum_{j=1}^n w_j\,\mathrm{relu}(\langle a, x\rangle - b_j)` of
    Zhang et al.'s Theorem 1: :math:`d + 2n` weights.

    Attributes:
      a: ``(d,)`` the shared direction of the first layer.
      b: ``(n,)`` the thresholds, increasing.
      w: ``(n,)`` the output weights.
    """

    a: jax.Array
    b: jax.Array
    w: jax.Array


def relu_interpolant(X, y, *, key) -> ReluInterpolant:
    r"""Zhang et al.'s (2017) construction of a two-layer ReLU network with :math:`2n + d` weights
    that takes the values ``y`` on the ``n`` rows of ``X``, whatever they are.

    Draw :math:`a\sim\mathcal N(0, I_d)`, so that the projections :math:`z_i = \langle a, x_i\rangle`
    of distinct inputs are distinct (with probability 1). Sort them,
    :math:`z_{(1)} < \dots < z_{(n)}`, and interleave thresholds
    :math:`b_1 < z_{(1)} < b_2 < z_{(2)} < \dots < b_n < z_{(n)}` (here :math:`b_j` is the midpoint of
    :math:`z_{(j-1)}, z_{(j)}` and :math:`b_1 = z_{(1)} - (z_{(2)} - z_{(1)})/2`). Then

    .. math::

       A_{ij} = \mathrm{relu}(z_{(i)} - b_j) = \begin{cases} z_{(i)} - b_j & j \le i \\ 0 & j > i\end{cases}

    is lower triangular with positive diagonal :math:`z_{(i)} - b_i` (their Lemma 1), and
    :math:`w = A^{-1} y_{\rm sorted}` gives :math:`c(x_i) = y_i` for every :math:`i`.

    Args:
      X: ``(n, d)`` inputs, pairwise distinct rows, ``n >= 2``.
      y: ``(n,)`` any real labels.
      key: ``jax.random`` key for the direction ``a``.

    Returns:
      :class:`ReluInterpolant`; evaluate it with :func:`interpolant_apply`.

    >>> X = jnp.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = jnp.array([3.0, -1.0, 2.0])
    >>> net = relu_interpolant(X, y, key=jax.random.key(0))
    >>> bool(jnp.allclose(interpolant_apply(net, X), y, atol=1e-4)), net.a.size + net.b.size + net.w.size
    (True, 8)

    References:
      Zhang, Bengio, Hardt, Recht and Vinyals (2017), Understanding deep learning requires
      rethinking generalization, ICLR, Theorem 1 and its Lemma 1.
    """
    fn = "relu_interpolant"
    key = as_key(fn, key)
    X = as_matrix(fn, "X", X)
    y = as_vector(fn, "y", y, X.shape[0], size_name="one label per row of X")
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"{fn}: X must have at least 2 rows, got {n}; one point is fitted by a constant.")
    dtype = jnp.result_type(X, y)
    X, y = X.astype(dtype), y.astype(dtype)
    a = _random.normal(key, (X.shape[1],), dtype)
    z = X @ a
    order = jnp.argsort(z)
    zs, ys = z[order], y[order]
    gaps = jnp.diff(zs)
    scale = float(jnp.max(jnp.abs(zs)))
    gmin = float(jnp.min(gaps))
    if not gmin > 100 * float(jnp.finfo(dtype).eps) * max(scale, 1.0):
        raise ValueError(f"{fn}: two inputs project to the same point along the random direction "
                         f"(smallest gap {gmin:.3g}); X has duplicate rows (or nearly so): remove "
                         "them, or draw another key.")
    b = jnp.concatenate([zs[:1] - gaps[:1] / 2, (zs[:-1] + zs[1:]) / 2])
    A = jax.nn.relu(zs[:, None] - b[None, :])
    w = solve_triangular(A, ys, lower=True)
    return ReluInterpolant(a, b, w)


def interpolant_apply(net: ReluInterpolant, X) -> jax.Array:
    r"""Evaluate :math:`c(x) = \sum_j w_j\,\mathrm{relu}(\langle a, x\rangle - b_j)` on the rows of ``X``.

    Args:
      net: a :class:`ReluInterpolant`.
      X: ``(m, d)`` inputs.

    Returns:
      ``(m,)`` outputs.
    """
    X = as_matrix("interpolant_apply", "X", X)
    if X.shape[1] != net.a.shape[0]:
        raise ValueError(f"interpolant_apply: X has {X.shape[1]} columns but the network was built "
                         f"for d={net.a.shape[0]} inputs; pass inputs of the same dimension.")
    return jax.nn.relu((X @ net.a)[:, None] - net.b[None, :]) @ net.w
