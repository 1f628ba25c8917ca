"""ntklib: why gradient descent finds global minima of over-parameterized networks.

The companion library of the course. One module per idea:

* :mod:`ntklib.linear`: over-parameterized linear least squares (chapter 1).
* :mod:`ntklib.nonlinear`: GD, SGD and Gauss-Newton on a model f(theta) (chapter 2).
* :mod:`ntklib.losses`: GD with a pseudo-Huber or a logistic loss, its Polyak-Lojasiewicz rate (chapter 2).
* :mod:`ntklib.os18`: the Oymak-Soltanolkotabi theorem's constants, bounds and instances, its closed discrete-time argument, potential and Fig. 1 (chapter 2).
* :mod:`ntklib.os19_paper`: chapter 3 beside the paper ((n, k) fitting grid, smooth-activation covariance, width condition).
* :mod:`ntklib.shallow`: the one-hidden-layer network, its init and training (chapters 3-4).
* :mod:`ntklib.ntk`: empirical, structured and infinite-width NTKs, linearization (chapter 4).
* :mod:`ntklib.generalization`: information and nuisance spaces of the NTK, label noise (chapter 5).
* :mod:`ntklib.li20_paper`: chapter 5 beside the papers (cluster geometry, bound terms, SGD step limit).
* :mod:`ntklib.glm`: over-parameterized generalized linear models (chapter 5).
* :mod:`ntklib.lowrank`: low-rank matrix recovery by over-parameterized factorization (chapter 5).
* :mod:`ntklib.zhang17`: chapter 0 beside Zhang et al. (Table 1, steps to fit against corruption, trend).
* :mod:`ntklib.data`: offline data sets (digits, diabetes, sphere, teacher, label noise) and
  chapter 6's benchmark problem.
* :mod:`ntklib.mlp`: dense networks of any depth and their NTK by the per-layer
  factorization (chapter 4, GGN).
* :mod:`ntklib.ggn`: the Gram-Gauss-Newton method and its cost (chapter 6).
* :mod:`ntklib.baselines`: GD, SGD and Adam from optax, and learning-rate tuning (chapter 6).
* :mod:`ntklib.rates`: convergence order, residuals, time to a loss, log-slope fits.
* :mod:`ntklib.adversarial`: attacks (FGSM, PGD) and adversarial training (chapter 7).
* :mod:`ntklib.plotting`, :mod:`ntklib.explore`, :mod:`ntklib.claims`,
  :mod:`ntklib.config`: the course's plot style, explorers, verdict cells and size
  profiles.
"""

from . import (
    adversarial,
    baselines,
    claims,
    config,
    data,
    explore,
    generalization,
    ggn,
    ggn_theory,
    glm,
    li20_paper,
    linear,
    losses,
    lowrank,
    mlp,
    nonlinear,
    ntk,
    os18,
    os19_paper,
    plotting,
    rates,
    shallow,
    tuning,
    zhang17,
)
from ._checks import DIVERGENCE_FACTOR, DivergenceWarning, PrecisionWarning
from .claims import ClaimFailed, verdict
from .config import profile
from .explore import Explorer
from .plotting import use_style

__version__ = "0.1.0"

__all__ = [
    "ClaimFailed",
    "DIVERGENCE_FACTOR",
    "DivergenceWarning",
    "PrecisionWarning",
    "adversarial",
    "baselines",
    "Explorer",
    "claims",
    "config",
    "data",
    "explore",
    "generalization",
    "ggn",
    "ggn_theory",
    "glm",
    "li20_paper",
    "linear",
    "losses",
    "lowrank",
    "mlp",
    "nonlinear",
    "ntk",
    "os18",
    "os19_paper",
    "plotting",
    "profile",
    "rates",
    "shallow",
    "tuning",
    "use_style",
    "verdict",
    "zhang17",
]
