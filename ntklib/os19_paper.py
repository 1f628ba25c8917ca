r"""Chapter 3 beside the paper: the (n, k) fitting grid for any activation, the neural-network
covariance of smooth activations, and the width condition of the chapter's proposition.

The network is :class:`~ntklib.shallow.ShallowNet` ``(k, activation, "ntk", train="W",
v_init="sign")``: :math:`f(x) = k^{-1/2}\sum_r v_r\phi(w_r^\top x/\sqrt d)`, :math:`v_r = \pm1` fixed,
:math:`W_0` standard Gaussian, inputs uniform on the sphere of radius :math:`\sqrt d` (the network
sees unit vectors), labels :math:`\pm1`, and GD on ``W`` with ``lr = 1/lambda_max(H(W_0))``.
A run **succeeds** when its *relative loss* :math:`L_T/L_0` is at most ``tol``.

References:
  Oymak, S. and Soltanolkotabi, M. (2020). Toward moderate overparameterization: global
  convergence guarantees for training shallow neural networks. IEEE JSAIT 1(1), 84-105,
  arXiv:1902.04674.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._checks import as_matrix, check_int, check_positive
from .data import sphere
from .ntk import gram
from .shallow import ShallowNet, train_gd

__all__ = [
    "SMOOTH",
    "FitGrid",
    "fit_grid",
    "grid_boundary",
    "grid_data",
    "nn_covariance",
    "OS19Condition",
    "os19_condition",
]

# sup|phi'|, sup|phi''|, phi', and whether phi(0) = 0 (zero-padding is then exact).
SMOOTH = {
    "tanh": (1.0, 4.0 / (3.0 * np.sqrt(3.0)), lambda z: 1.0 - np.tanh(z) ** 2, np.tanh),
    "softplus": (1.0, 0.25, lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z: np.logaddexp(0.0, z)),
}
"""Smooth activations: ``(sup|phi'|, sup|phi''|, phi', phi)`` with NumPy callables."""

_PADDABLE = {"tanh", "relu"}  # phi(0) = 0 and no bias: a zero input adds nothing to loss or gradient


class FitGrid(NamedTuple):
    """The (n, k) grid of :func:`fit_grid`.

    Attributes:
      activation: the activation.
      d: input dimension.
      grid_n, grid_k: ``(N,)`` data sizes and ``(K,)`` widths.
      final: ``(seeds, K, N)`` relative losses :math:`L_T/L_0`.
      success: ``(K, N)`` fraction of seeds with :math:`L_T/L_0 \\le` ``tol``.
      tol: the success threshold on the relative loss.
      steps: GD steps per run.
    """

    activation: str
    d: int
    grid_n: tuple
    grid_k: tuple
    final: np.ndarray
    success: np.ndarray
    tol: float
    steps: int


def _problem(n, d, key):
    kx, ky = jax.random.split(key)
    return sphere(n, d, key=kx, radius=np.sqrt(d)), jax.random.rademacher(ky, (n,), jnp.float32)


def _run(k, activation, X, y, steps, widest):
    net = ShallowNet(k, activation, "ntk", train="W", v_init="sign")
    params0 = {"W": widest["W"][:k], "v": widest["v"][:k]}
    lr = 1.0 / float(np.linalg.eigvalsh(np.asarray(gram(net, params0, X), np.float64))[-1])
    return train_gd(net, params0, X, y, lr=lr, steps=steps)


def grid_data(n: int, d: int, *, seed: int, keys: Callable = jax.random.key):
    r"""The first ``n`` points and labels of seed ``seed`` of :func:`fit_grid` with ``max(grid_n) = n``.

    Returns ``(X, y)``: ``(n, d)`` points on the sphere of radius :math:`\sqrt d` and ``(n,)`` signs;
    the network sees ``X / sqrt(d)``. ``keys`` as in :func:`fit_grid`.
    """
    check_positive("grid_data", "n", n, integer=True)
    check_positive("grid_data", "d", d, integer=True)
    seed = check_int("grid_data", "seed", seed, 0)
    key_data, _ = jax.random.split(keys(seed))
    return _problem(n, d, key_data)


def fit_grid(activation: str, *, d: int, grid_n, grid_k, seeds: int, steps: int,
             tol: float = 1e-3, keys: Callable = jax.random.key) -> FitGrid:
    r"""Relative final loss of GD on every cell :math:`(n, k)` of a grid, over ``seeds`` draws.

    Seed ``s`` draws the data from ``keys(s)`` (split into data and initialization
    keys); the data sets of one seed are nested (the first ``n`` of ``max(grid_n)`` points) and
    the width-``k`` network is the first ``k`` units of the widest one. For activations with
    :math:`\phi(0) = 0` (tanh, ReLU: no bias), padding a data set with zero inputs and labels
    changes neither the loss nor the iterates, so one compiled loop per width serves every ``n``;
    other activations compile one loop per cell.

    Args:
      activation: a :class:`~ntklib.shallow.ShallowNet` activation (``"tanh"``, ``"relu"``, ...).
      d: input dimension.
      grid_n, grid_k: data sizes and widths (increasing).
      seeds: draws per cell, ``>= 1``.
      steps: GD steps per run.
      tol: success means :math:`L_T \le \mathrm{tol}\cdot L_0` (the *relative loss*).
      keys: ``keys(s)`` makes the key of seed ``s`` (default ``jax.random.key``; the notebooks
        pass :func:`ntklib.config.key`, so that ``NTKLIB_SEED`` shifts the draws).

    Returns:
      :class:`FitGrid`.
    """
    fn = "fit_grid"
    check_positive(fn, "d", d, integer=True)
    check_positive(fn, "seeds", seeds, integer=True)
    check_positive(fn, "steps", steps, integer=True)
    check_positive(fn, "tol", tol)
    grid_n, grid_k = tuple(int(n) for n in grid_n), tuple(int(k) for k in grid_k)
    if not grid_n or not grid_k or min(grid_n + grid_k) < 1:
        raise ValueError(f"{fn}: grid_n and grid_k must be non-empty lists of positive integers.")
    N = max(grid_n)
    final = np.zeros((seeds, len(grid_k), len(grid_n)))
    pad = activation in _PADDABLE
    for seed in range(seeds):
        key_data, key_init = jax.random.split(keys(seed))
        X_all, y_all = _problem(N, d, key_data)
        widest = ShallowNet(max(grid_k), activation, "ntk", train="W", v_init="sign").init(d, key=key_init)
        for i, k in enumerate(grid_k):
            for j, n in enumerate(grid_n):
                if pad:
                    keep = (jnp.arange(N) < n).astype(X_all.dtype)
                    traj = _run(k, activation, X_all * keep[:, None], y_all * keep, steps, widest)
                else:
                    traj = _run(k, activation, X_all[:n], y_all[:n], steps, widest)
                final[seed, i, j] = float(traj.losses[-1]) / float(traj.losses[0])
    return FitGrid(activation, int(d), grid_n, grid_k, final, (final <= tol).mean(axis=0),
                   float(tol), int(steps))


def grid_boundary(grid: FitGrid, *, level: float = 0.5) -> dict:
    """For each ``n``, the smallest width whose success fraction is at least ``level`` (or None).

    >>> g = FitGrid("relu", 8, (8, 16), (2, 4, 8), np.zeros((1, 3, 2)),
    ...             np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), 1e-3, 1)
    >>> grid_boundary(g)
    {8: 4, 16: 8}
    """
    if not all(hasattr(grid, f) for f in ("grid_n", "grid_k", "success")):
        raise ValueError(f"grid_boundary: grid must be a FitGrid (what fit_grid returns), got "
                         f"{type(grid).__name__}.")
    out = {}
    for j, n in enumerate(grid.grid_n):
        ok = np.flatnonzero(np.asarray(grid.success)[:, j] >= level)
        out[n] = int(grid.grid_k[ok[0]]) if ok.size else None
    return out


def nn_covariance(X, activation: str, *, nodes: int = 96) -> np.ndarray:
    r"""The neural-network covariance :math:`\Sigma(X) = E_w[(\phi'(Xw)\phi'(Xw)^\top)\odot XX^\top]`.

    .. math::

       \Sigma_{ij} = x_i^\top x_j\; E\bigl[\phi'(u)\phi'(v)\bigr],\qquad
       (u, v) \sim \mathcal N\Bigl(0, \begin{bmatrix}\lVert x_i\rVert^2 & x_i^\top x_j\\
       x_i^\top x_j & \lVert x_j\rVert^2\end{bmatrix}\Bigr),

    computed by a ``nodes`` x ``nodes`` Gauss-Hermite rule in the coordinates
    :math:`u = a z_1`, :math:`v = b(\rho z_1 + \sqrt{1-\rho^2} z_2)`. The integrand is smooth
    and analytic in a strip, so the rule converges geometrically: for unit-norm inputs the
    default 96 nodes are within about 1e-9 of the limit for tanh (whose poles at
    :math:`\pm i\pi/2` slow the rule) and at round-off for softplus. Only smooth activations (:data:`SMOOTH`); for the ReLU use
    the closed form :func:`ntklib.ntk.lambda0`.

    Args:
      X: ``(n, d)`` inputs (the network's view: unit vectors for the course's networks).
      activation: a key of :data:`SMOOTH`.
      nodes: quadrature nodes per dimension.

    Returns:
      ``(n, n)`` float64.
    """
    fn = "nn_covariance"
    if activation not in SMOOTH:
        raise ValueError(f"{fn}: activation must be one of {sorted(SMOOTH)} (smooth), got {activation!r}; "
                         "for the ReLU use ntklib.ntk.lambda0 (closed form).")
    check_positive(fn, "nodes", nodes, integer=True)
    X = np.asarray(as_matrix(fn, "X", X), np.float64)
    dphi = SMOOTH[activation][2]
    z, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    w = w / np.sqrt(2.0 * np.pi)
    nrm = np.linalg.norm(X, axis=1)
    dot = X @ X.T
    nn = np.outer(nrm, nrm)
    rho = np.clip(np.divide(dot, nn, out=np.zeros_like(dot), where=nn > 0), -1.0, 1.0)
    E = np.empty_like(dot)
    z1, z2 = z[:, None], z[None, :]
    for i in range(X.shape[0]):              # one row at a time: (n, nodes, nodes) in memory
        r = rho[i][:, None, None]
        u = nrm[i] * z1[None]
        v = nrm[:, None, None] * (r * z1[None] + np.sqrt(np.maximum(1.0 - r * r, 0.0)) * z2[None])
        E[i] = np.einsum("jpq,p,q->j", dphi(u) * dphi(v), w, w)
    return dot * E


class OS19Condition(NamedTuple):
    r"""The width condition of the chapter's proposition, computed on a data set.

    Attributes:
      lam: :math:`\lambda(X) = \lambda_{\min}(\Sigma(X))`.
      op_norm: :math:`\lVert X\rVert`.
      B: :math:`\max(\sup|\phi'|, \sup|\phi''|)`.
      s_phi: :math:`\sqrt{\operatorname{Var}\phi(g)}`, :math:`g\sim\mathcal N(0,1)`.
      c_delta: :math:`1 + s_\phi/\sqrt\delta`.
      k_first: :math:`1024 B^2 c_\delta^2\, n\lVert X\rVert^2/\lambda(X)^2`.
      k_second: :math:`8B^2\lVert X\rVert^2\log(n/\delta)/\lambda(X)`.
      k_min: ``max(k_first, k_second)``.
      kd_min: ``k_min * d``, the parameter count it asks for.
      delta: the failure probability (the result holds with probability ``1 - 2 delta``).
    """

    lam: float
    op_norm: float
    B: float
    s_phi: float
    c_delta: float
    k_first: float
    k_second: float
    k_min: float
    kd_min: float
    delta: float


def os19_condition(X, activation: str, *, delta: float = 0.1, nodes: int = 96) -> OS19Condition:
    r"""Evaluate the proposition's width condition (chapter 3, ``prop-os19-smooth``) on ``X``.

    .. math::

       k \;\ge\; \max\Bigl\{1024\,B^2c_\delta^2\,\frac{n\lVert X\rVert^2}{\lambda(X)^2},\;
       8B^2\,\frac{\lVert X\rVert^2}{\lambda(X)}\log\frac n\delta\Bigr\}.

    These are the constants of the course's proof, not the paper's (whose explicit constants the
    book could not check). ``X`` is what the network sees: unit-norm rows.

    Args:
      X: ``(n, d)`` unit-norm inputs.
      activation: a key of :data:`SMOOTH`.
      delta: in ``(0, 1)``.
      nodes: Gauss-Hermite nodes (see :func:`nn_covariance`).

    Returns:
      :class:`OS19Condition`.
    """
    fn = "os19_condition"
    if activation not in SMOOTH:
        raise ValueError(f"{fn}: activation must be one of {sorted(SMOOTH)} (smooth), got {activation!r}; "
                         "for the ReLU use ntklib.ntk.lambda0 (closed form).")
    check_positive(fn, "nodes", nodes, integer=True)
    delta = float(delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"{fn}: delta must lie in (0, 1), got {delta!r}.")
    Xn = np.asarray(as_matrix(fn, "X", X), np.float64)
    if not np.allclose(np.linalg.norm(Xn, axis=1), 1.0, rtol=1e-5):
        raise ValueError(f"{fn}: the proposition assumes unit-norm inputs; divide X by its row norms "
                         "(for the course's data, X / sqrt(d)).")
    n, d = Xn.shape
    lam = float(np.linalg.eigvalsh(nn_covariance(Xn, activation, nodes=nodes))[0])
    op = float(np.linalg.norm(Xn, 2))
    d1, d2, _, phi = SMOOTH[activation]
    B = max(d1, d2)
    z, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    w = w / np.sqrt(2.0 * np.pi)
    mean = float(w @ phi(z))
    s_phi = float(np.sqrt(max(w @ phi(z) ** 2 - mean**2, 0.0)))
    c = 1.0 + s_phi / np.sqrt(delta)
    k1 = 1024.0 * B**2 * c**2 * n * op**2 / lam**2
    k2 = 8.0 * B**2 * op**2 * np.log(n / delta) / lam
    k = max(k1, k2)
    return OS19Condition(lam, op, B, s_phi, c, k1, k2, k, k * d, delta)
