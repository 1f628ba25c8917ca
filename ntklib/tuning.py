r"""Fair tuning: every method's settings chosen on a held-out validation split.

Chapter 6's claim B6 compares GGN with SGD and Adam. Choosing each method's settings by its
final *training* loss favours whichever method overfits fastest. Here every setting (a learning
rate, a damping, a batch size) and every stopping point is chosen by the **validation** loss, on
data that no method trains on, and the chosen run is scored once on the **test** split:

.. math::

   (s^\star, t^\star) = \operatorname*{arg\,min}_{s \in \mathcal G,\ t \in \mathcal T_s}
   \frac{1}{n_{\text{val}}}\bigl\lVert f(w^{(s)}_t, X_{\text{val}}) - y_{\text{val}}\bigr\rVert^2,
   \qquad \text{report}\quad
   \frac{1}{n_{\text{test}}}\bigl\lVert f(w^{(s^\star)}_{t^\star}, X_{\text{test}}) - y_{\text{test}}\bigr\rVert^2,

where :math:`\mathcal G` is the method's grid and :math:`\mathcal T_s` the recorded steps of
its run (early stopping, the same for every method), or only the last step
(``early_stopping=False``). A run whose training loss is non-finite or ends above its start is
excluded. Runs record only their final parameters, so the parameters at :math:`t^\star` are
obtained by running the chosen setting again for :math:`t^\star` steps; every solver of
:mod:`ntklib.ggn` and :mod:`ntklib.baselines` is deterministic given its key, so the rerun
retraces the first :math:`t^\star` steps (:func:`tune_on_validation` checks that its
validation loss matches the one recorded).

* :func:`validation_split`: split a training set into a fitting and a validation part.
* :func:`mse`: the mean squared error of a model on a data set.
* :func:`optax_trainer`: SGD or Adam as a ``train`` callable whose grid compiles once.
* :func:`tune_on_validation`: the protocol above for one method.
* :func:`paired_difference`: the test-MSE gap of two fitted models with its standard error.

References:
  Cai et al. (2019), Gram-Gauss-Newton method: learning overparameterized neural networks for
  regression problems, arXiv:1905.11675 (the comparison this protocol makes fair).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from ._checks import as_key, as_matrix, as_vector, check_int
from ._runs import prepare
from ._batching import apply as model_apply
from .baselines import train_optax, tune_lr

__all__ = ["ValidationTuned", "PairedDifference", "validation_split", "mse", "grid", "thin",
           "optax_trainer", "tune_on_validation", "paired_difference"]


class ValidationTuned(NamedTuple):
    r"""One method tuned on the validation split.

    Attributes:
      settings: ``tuple`` of dicts, the grid in the order it was run.
      val_mse: ``(len(settings), K + 1)`` validation MSE of every run at every record
        (NaN past the end of a shorter run).
      train_mse: the same on the fitting split.
      epochs: ``(len(settings), K + 1)`` the epoch of each record.
      excluded: ``(len(settings),)`` bool, ``True`` for runs excluded as divergent.
      best: index of the chosen setting in ``settings``.
      setting: ``settings[best]``.
      stop_step: :math:`t^\star`, the chosen step count.
      stop_epoch: the epoch of :math:`t^\star`.
      val: the validation MSE at the choice.
      train: the training (fitting split) MSE at the choice.
      test: the test MSE at the choice, computed once, from the rerun parameters.
      at_edge: ``dict`` hyperparameter name -> ``True`` if the chosen value is the smallest or
        largest of that name's values in the grid (a sign the grid should be wider).
      edge_z: ``dict`` hyperparameter name -> for a name at an edge, the paired
        :math:`z` (:func:`paired_difference` on the validation split) of the choice against the
        best run whose value of that name is interior, each at its own stopping step; ``None``
        when the name is not at an edge or has no interior value. The choice has the lower
        validation MSE, so :math:`z \le 0`; :math:`z < -2` means the validation split resolves
        the edge as better (the optimum may lie beyond the grid), :math:`z \ge -2` that it
        cannot tell the edge from the interior (the optimum is flat there).
      run: the chosen setting's full run (its ``test_losses`` are validation losses).
      params: the parameters at :math:`t^\star` (from the rerun).
    """

    settings: tuple
    val_mse: np.ndarray
    train_mse: np.ndarray
    epochs: np.ndarray
    excluded: np.ndarray
    best: int
    setting: dict
    stop_step: int
    stop_epoch: float
    val: float
    train: float
    test: float
    at_edge: dict
    edge_z: dict
    run: object
    params: object


class PairedDifference(NamedTuple):
    r"""The test-MSE difference of two models on the same points (see :func:`paired_difference`).

    Attributes:
      diff: :math:`\bar d = \mathrm{MSE}_a - \mathrm{MSE}_b`.
      se: its standard error :math:`s_d/\sqrt{n}`.
      z: :math:`\bar d / \mathrm{se}`.
    """

    diff: float
    se: float
    z: float


def validation_split(X, y, *, fraction: float = 0.2, key):
    r"""Split ``(X, y)`` at random into a fitting part and a validation part.

    .. math::

       n_{\text{val}} = \operatorname{round}(\texttt{fraction}\cdot n), \qquad
       n_{\text{fit}} = n - n_{\text{val}} .

    Args:
      X: ``(n, d)``.
      y: ``(n,)``.
      fraction: in ``(0, 1)``, the share kept for validation.
      key: ``jax.random`` key (keyword-only).

    Returns:
      ``(X_fit, y_fit, X_val, y_val)``.

    >>> import jax, jax.numpy as jnp
    >>> Xf, yf, Xv, yv = validation_split(jnp.ones((10, 2)), jnp.arange(10.0), fraction=0.3,
    ...                                   key=jax.random.key(0))
    >>> Xf.shape, Xv.shape
    ((7, 2), (3, 2))
    """
    fn = "validation_split"
    X = as_matrix(fn, "X", X)
    y = as_vector(fn, "y", y, X.shape[0], size_name="one target per row of X")
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        raise ValueError(f"{fn}: fraction must be in (0, 1), e.g. 0.2, got {fraction!r}.")
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if n_val < 1 or n_val > n - 1:
        raise ValueError(f"{fn}: fraction={fraction} of n={n} leaves an empty part; use more "
                         "data or a fraction nearer 0.5.")
    key = as_key(fn, key)
    perm = jax.random.permutation(key, n)
    fit, val = perm[n_val:], perm[:n_val]
    return X[fit], y[fit], X[val], y[val]


def mse(model, params, X, y) -> float:
    r"""Mean squared error :math:`\tfrac1n\lVert f(w, X) - y\rVert^2` of a model.

    Args:
      model: a :class:`~ntklib.shallow.ShallowNet` or ``model(params, X) -> (n,)``.
      params: its parameters.
      X: ``(n, d)``.
      y: ``(n,)``.

    Returns:
      ``float``.

    >>> import jax.numpy as jnp
    >>> mse(lambda w, X: X @ w, jnp.ones(2), jnp.eye(2), jnp.zeros(2))
    1.0
    """
    params, X, y = prepare("mse", model, params, X, y)
    f = model_apply(model, params, X)
    return float(jnp.mean((f - y) ** 2))


def grid(**axes) -> list:
    r"""The Cartesian product of named value lists, as a list of dicts.

    >>> grid(lr=[0.1, 1.0], damping=[0.0])
    [{'lr': 0.1, 'damping': 0.0}, {'lr': 1.0, 'damping': 0.0}]
    """
    if not axes:
        raise ValueError("grid: name at least one hyperparameter, e.g. grid(lr=[0.1, 1]).")
    for name, values in axes.items():
        if len(values) == 0:
            raise ValueError(f"grid: {name} has no values; give at least one.")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*axes.values())]


def thin(values) -> list:
    r"""A search grid with its number of points cut in a smoke run, its shapes untouched.

    The number of points is an iteration count: it goes through :func:`ntklib.config.iters`,
    so ``NTKLIB_SMOKE=1`` keeps at most ``config.SMOKE_ITERS`` of them. The kept points are
    evenly spaced over the grid, both ends included, so a smoke run still takes the code paths
    of the extremes (e.g. ``None`` for full batch at the end of a batch-size grid). Outside a
    smoke run the grid is returned whole, as a list.

    >>> import os; os.environ["NTKLIB_SMOKE"] = "0"; thin([1, 2, 3, 4, 5])
    [1, 2, 3, 4, 5]
    >>> os.environ["NTKLIB_SMOKE"] = "1"; thin([1, 2, 3, 4, 5]); os.environ["NTKLIB_SMOKE"] = "0"
    [1, 3, 5]
    """
    from .config import iters

    values = list(values)
    if not values:
        raise ValueError("thin: the grid is empty; give at least one value.")
    k = iters(len(values))
    if k >= len(values):
        return values
    if k == 1:
        return [values[0]]
    return [values[i] for i in np.round(np.linspace(0, len(values) - 1, k)).astype(int)]


def optax_trainer(model, params0, X_fit, y_fit, X_val, y_val, *, optimizer: str, steps: int,
                  batch_size: int | None = None, key=None, chunk: int = 100) -> Callable:
    r"""SGD or Adam as a ``train(*, lr, steps=None)`` callable for :func:`tune_on_validation`.

    The first call runs :func:`ntklib.baselines.tune_lr` over every learning rate asked for so
    far (one compiled program for the whole grid, the validation loss recorded as its test
    loss) and caches the runs; a call with ``steps`` (the early-stopping rerun) runs
    :func:`ntklib.baselines.train_optax` with the same key, which retraces the run's first
    ``steps`` steps. Call its ``prefetch`` attribute with the grid first to sweep it in one compile.

    Args:
      model, params0: the model and its initialization.
      X_fit, y_fit, X_val, y_val: the fitting and validation splits.
      optimizer: ``"sgd"`` or ``"adam"``.
      steps: steps of a full run.
      batch_size, key, chunk: as in :func:`ntklib.baselines.train_optax` (``chunk`` is also
        the recording interval of a mini-batch run, so the resolution of early stopping).

    Returns:
      ``train`` with a ``prefetch(lrs)`` attribute.
    """
    import optax

    factories = {"sgd": optax.sgd, "adam": optax.adam}
    if optimizer not in factories:
        raise ValueError(f"optax_trainer: optimizer must be 'sgd' or 'adam', got {optimizer!r}.")
    fn = "optax_trainer"  # checked here, once, rather than at the first train(...)
    prepare(fn, model, params0, X_fit, y_fit)
    prepare(fn, model, params0, X_val, y_val)
    check_int(fn, "steps", steps, 1)
    if batch_size is not None:
        key = as_key(fn, key)
    cache = {}

    def prefetch(lrs):
        lrs = [float(v) for v in lrs if float(v) not in cache]
        if lrs:
            sw = tune_lr(model, params0, X_fit, y_fit, optimizer=optimizer, lrs=lrs, steps=steps,
                         batch_size=batch_size, key=key, chunk=chunk, X_test=X_val, y_test=y_val)
            for lr, run in zip(sw.lrs, sw.runs):
                cache[float(lr)] = run

    def train(*, lr, steps=None):
        if steps is None:
            prefetch([lr])
            return cache[float(lr)]
        return train_optax(model, params0, X_fit, y_fit, optimizer=factories[optimizer](lr),
                           steps=steps, batch_size=batch_size, key=key, chunk=chunk,
                           X_test=X_val, y_test=y_val)

    train.prefetch = prefetch
    return train


def _pad(rows):
    K = max(len(r) for r in rows)
    out = np.full((len(rows), K), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def tune_on_validation(train: Callable, settings, *, model, X_fit, y_fit, X_val, y_val,
                       X_test, y_test, early_stopping: bool = True,
                       rerun_rtol: float = 1e-6) -> ValidationTuned:
    r"""Choose a method's setting and stopping step on the validation split; score it on test.

    ``train(steps=None, **setting)`` must run the method from its fixed initialization on
    ``(X_fit, y_fit)``, record the validation loss ``X_test=X_val, y_test=y_val`` (so its
    :class:`~ntklib.ggn.TimedTrajectory` ``test_losses`` are :math:`\tfrac12` validation
    sums of squares), and, given ``steps``, stop after that many steps. The test split is
    touched once, after the choice.

    Args:
      train: the method, as above.
      settings: a list of dicts (e.g. from :func:`grid`).
      model: the model ``train`` trains (to score the chosen parameters).
      X_fit, y_fit, X_val, y_val, X_test, y_test: the three splits.
      early_stopping: choose the stopping step too (default); ``False`` scores only the end
        of each run.
      rerun_rtol: relative tolerance on the rerun's final validation loss against the one
        recorded at :math:`t^\star` (a determinism check).

    Returns:
      :class:`ValidationTuned`.

    Raises:
      ValueError: an empty grid, every run excluded, or a rerun that does not retrace its run.
    """
    fn = "tune_on_validation"
    settings = tuple(dict(s) for s in settings)
    if not settings:
        raise ValueError(f"{fn}: settings is empty; pass at least one dict, e.g. grid(lr=[...]).")
    if not callable(train):
        raise ValueError(f"{fn}: train must be callable as train(steps=None, **setting).")
    n_fit, n_val = int(np.shape(y_fit)[0]), int(np.shape(y_val)[0])
    runs = [train(steps=None, **s) for s in settings]
    val = _pad([2.0 * np.asarray(r.test_losses) / n_val for r in runs])
    tr = _pad([2.0 * np.asarray(r.losses) / n_fit for r in runs])
    ep = _pad([np.asarray(r.epochs, float) for r in runs])
    if np.isnan(np.asarray(runs[0].test_losses)).all():
        raise ValueError(f"{fn}: train recorded no validation loss; pass X_test=X_val, "
                         "y_test=y_val to the solver inside train.")
    excluded = np.array([not np.all(np.isfinite(r.losses)) or r.losses[-1] > r.losses[0]
                         for r in runs])
    if excluded.all():
        raise ValueError(f"{fn}: every setting diverged or ended above its initial loss; "
                         "use smaller learning rates or more damping.")
    score = val.copy()
    score[excluded] = np.inf
    if not early_stopping:
        last = np.array([len(r.losses) - 1 for r in runs])
        mask = np.full_like(score, np.inf)
        mask[np.arange(len(runs)), last] = score[np.arange(len(runs)), last]
        score = mask
    score = np.where(np.isnan(score), np.inf, score)
    best, rec = np.unravel_index(int(np.argmin(score)), score.shape)
    best, rec = int(best), int(rec)
    stop_step = int(runs[best].step[rec])

    def params_at(i, j):  # run i's parameters at its record j (a rerun unless j is its end)
        return runs[i].params if j == len(runs[i].losses) - 1 else \
            train(steps=int(runs[i].step[j]), **settings[i]).params

    params = params_at(best, rec)
    got = mse(model, params, X_val, y_val)
    if not math.isclose(got, val[best, rec], rel_tol=rerun_rtol, abs_tol=1e-12):
        raise ValueError(f"{fn}: the rerun of {settings[best]} for {stop_step} steps has "
                         f"validation MSE {got:.6g}, not the recorded {val[best, rec]:.6g}; "
                         "train must be deterministic (fixed keys) and stop after `steps`.")
    at_edge, edge_z = {}, {}
    for name in settings[0]:
        values = sorted({s[name] for s in settings}, key=lambda v: (v is None, v))
        at_edge[name] = len(values) > 1 and settings[best][name] in (values[0], values[-1])
        edge_z[name] = None
        inner = [i for i, s in enumerate(settings) if s[name] not in (values[0], values[-1])
                 and np.isfinite(score[i]).any()]
        if at_edge[name] and inner:  # the best interior run, rerun to its own stopping step
            i = min(inner, key=lambda i: score[i].min())
            other = params_at(i, int(np.argmin(score[i])))
            edge_z[name] = paired_difference(model, params, other, X_val, y_val).z
    return ValidationTuned(
        settings=settings, val_mse=val, train_mse=tr, epochs=ep, excluded=excluded, best=best,
        setting=settings[best], stop_step=stop_step, stop_epoch=float(ep[best, rec]),
        val=float(val[best, rec]), train=float(tr[best, rec]),
        test=mse(model, params, X_test, y_test), at_edge=at_edge, edge_z=edge_z, run=runs[best],
        params=params)


def paired_difference(model, params_a, params_b, X, y) -> PairedDifference:
    r"""Test-MSE difference of two fitted models, with its standard error over the test points.

    .. math::

       d_i = (f_a(x_i) - y_i)^2 - (f_b(x_i) - y_i)^2, \qquad
       \bar d = \frac1n\sum_i d_i, \qquad
       \mathrm{se} = \frac{s_d}{\sqrt n},\quad s_d^2 = \frac{1}{n-1}\sum_i (d_i - \bar d)^2 .

    By the central limit theorem over the test points, :math:`|\bar d| > 2\,\mathrm{se}` is
    a difference that the test set resolves (about 95% two-sided); a smaller one is not.
    Pairing (the same points for both) removes the variance the two models share.

    Args:
      model: the model (a ShallowNet or ``model(params, X)``).
      params_a, params_b: the two fitted parameter sets.
      X: ``(n, d)`` test inputs, ``n >= 2``.
      y: ``(n,)`` test targets.

    Returns:
      :class:`PairedDifference`.

    >>> import jax.numpy as jnp
    >>> X, y = jnp.eye(3), jnp.zeros(3)
    >>> paired_difference(lambda w, X: X @ w, jnp.ones(3), jnp.zeros(3), X, y).diff
    1.0
    """
    fn = "paired_difference"
    params_a, X, y = prepare(fn, model, params_a, X, y)
    params_b, _, _ = prepare(fn, model, params_b, X, y)
    if X.shape[0] < 2:
        raise ValueError("paired_difference: needs at least 2 test points for a standard error.")
    ea = (model_apply(model, params_a, X) - y) ** 2
    eb = (model_apply(model, params_b, X) - y) ** 2
    d = np.asarray(ea - eb, np.float64)
    diff, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
    return PairedDifference(diff=diff, se=se, z=diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0)
