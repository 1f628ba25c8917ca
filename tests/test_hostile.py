"""Hostile and edge-case inputs across the public API (issue 14), with x64 off and on.

Every case asserts the exact exception (or warning) class and a fragment of the message that
names the problem, or the correct result against an independent oracle. The ``precision``
fixture runs each case twice: float32 (``jax_enable_x64`` off) and float64 (on). Sizes are
tiny: the module must stay fast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import optax

import ntklib
from ntklib import (DivergenceWarning, PrecisionWarning, adversarial, baselines, claims, config,
                    data, generalization as gen, ggn, ggn_theory, glm, li20_paper, linear,
                    lowrank, mlp, nonlinear as nl, ntk, os18, os19_paper, rates, shallow, tuning,
                    zhang17)


@pytest.fixture(params=["x32", "x64"], autouse=True)
def precision(request):
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param == "x64")
    try:
        yield request.param
    finally:
        jax.config.update("jax_enable_x64", previous)


RNG = np.random.default_rng(0)
X35 = RNG.normal(size=(3, 5))           # n=3 <= p=5, full row rank
Y3 = RNG.normal(size=3)
T5 = np.zeros(5)
NET = shallow.ShallowNet(8, "tanh")
XN = RNG.normal(size=(4, 3))
YN = np.ones(4)


def lin_model(theta, X):
    return X @ theta


def net_model(params, X):
    return shallow.apply(NET, params, X)


def params_net():
    return shallow.init(NET, 3, key=0)


def psd(n=4, seed=1):
    A = np.random.default_rng(seed).normal(size=(n, n))
    return A @ A.T + 0.1 * np.eye(n)


def _loss_fn(x, y):
    return 0.5 * jnp.sum((x - y) ** 2, axis=-1)


# --------------------------------------------------------------------------- error cases
# (module, id, call, exception class, message fragment as a regex)

ERRORS = [
    # empty inputs: n = 0, p = 0, d = 0, rejected by name
    ("linear", "gd-n0", lambda: linear.gd(np.zeros((0, 5)), np.zeros(0), T5, lr=0.1, steps=2),
     ValueError, r"gd: X is empty \(shape \(0, 5\)\)"),
    ("linear", "gd-p0", lambda: linear.gd(np.zeros((3, 0)), Y3, np.zeros(0), lr=0.1, steps=2),
     ValueError, r"gd: X is empty \(shape \(3, 0\)\)"),
    ("linear", "closest-n0", lambda: linear.closest_solution(np.zeros((0, 2)), [], [0.0, 0.0]),
     ValueError, r"closest_solution: X is empty"),
    ("linear", "step_sizes-p0", lambda: linear.step_sizes(np.zeros((2, 0))),
     ValueError, r"step_sizes: X is empty"),
    ("linear", "min_norm-empty", lambda: linear.min_norm_solution(np.zeros((0, 0)), []),
     ValueError, r"min_norm_solution: X is empty"),
    ("ntk", "lambda0-n0", lambda: ntk.lambda0(np.zeros((0, 3))), ValueError,
     r"lambda0: X is empty"),
    ("ntk", "relu_ntk-d0", lambda: ntk.relu_ntk_infinite(np.zeros((3, 0))), ValueError,
     r"X1 is empty|is empty"),
    ("shallow", "apply-n0", lambda: shallow.apply(NET, params_net(), np.zeros((0, 3))),
     ValueError, r"apply: X is empty"),
    ("data", "normalize-n0", lambda: data.normalize_rows(np.zeros((0, 3))), ValueError,
     r"normalize_rows: X is empty"),
    ("generalization", "spectrum-n0", lambda: gen.spectrum(np.zeros((0, 0))), ValueError,
     r"spectrum: K is empty"),
    ("glm", "closest_min-n0", lambda: glm.closest_minimizer(np.zeros((0, 4)), [], np.zeros(4)),
     ValueError, r"closest_minimizer: X is empty"),
    ("ggn", "ggn-n0", lambda: ggn.ggn(NET, params_net(), np.zeros((0, 3)), [], steps=1),
     ValueError, r"ggn: X is empty"),
    ("baselines", "optax-n0", lambda: baselines.train_optax(
        NET, params_net(), np.zeros((0, 3)), [], optimizer=optax.sgd(0.1), steps=1),
     ValueError, r"train_optax: X is empty"),
    ("linear", "loss-y-empty", lambda: linear.loss(T5, X35, []), ValueError,
     r"loss: y is empty|y has length 0"),
    # keys: None, wrong types, batches of keys; ints and both key kinds work (see below)
    ("shallow", "init-key-None", lambda: shallow.init(NET, 3, key=None), ValueError,
     r"init: key is None, but init needs a PRNG key.*jax\.random\.key\(0\)"),
    ("shallow", "init-key-str", lambda: shallow.init(NET, 3, key="0"), ValueError,
     r"init: key must be a PRNG key or an int seed, got a str"),
    ("shallow", "init-key-float", lambda: shallow.init(NET, 3, key=1.5), ValueError,
     r"init: key must be a PRNG key or an int seed, got a float"),
    ("shallow", "init-key-bool", lambda: shallow.init(NET, 3, key=True), ValueError,
     r"got the bool True"),
    ("shallow", "init-key-negative", lambda: shallow.init(NET, 3, key=-1), ValueError,
     r"int seed key=-1 must lie in \[0, 2\*\*32\)"),
    ("shallow", "init-key-batch", lambda: shallow.init(NET, 3, key=jax.random.split(
        jax.random.key(0), 3)), ValueError, r"a batch of keys of shape \(3,\)"),
    ("shallow", "init-key-wrong-array", lambda: shallow.init(NET, 3, key=np.zeros(3)),
     ValueError, r"got an array of dtype float64 and shape \(3,\)"),
    ("shallow", "train_sgd-key-None", lambda: shallow.train_sgd(
        NET, params_net(), XN, YN, lr=0.1, steps=2, batch_size=2, key=None), ValueError,
     r"train_sgd: key is None"),
    ("nonlinear", "sgd-key-str", lambda: nl.sgd(lin_model, T5, X35, Y3, lr=0.1, steps=2,
                                               batch_size=1, key="seed"), ValueError,
     r"sgd: key must be a PRNG key or an int seed"),
    ("linear", "random_features-key-None", lambda: linear.random_features(
        X35, 4, key=None), ValueError, r"random_features: key is None"),
    ("lowrank", "planted-key-None", lambda: lowrank.planted(4, 1, key=None), ValueError,
     r"planted: key is None"),
    ("lowrank", "gaussian_measurements-key-str", lambda: lowrank.gaussian_measurements(
        5, 3, key="k"), ValueError, r"gaussian_measurements: key must be a PRNG key"),
    ("generalization", "symmetric_init-key-None", lambda: gen.symmetric_init(4, 3, key=None),
     ValueError, r"symmetric_init: key is None"),
    ("glm", "instance-key-None", lambda: glm.instance(key=None), ValueError,
     r"instance: key is None"),
    ("os18", "instance_holds-key-float", lambda: os18.instance_holds(key=0.5), ValueError,
     r"instance_holds: key must be a PRNG key or an int seed"),
    ("ggn", "minibatch-key-None", lambda: ggn.ggn_minibatch(
        NET, params_net(), XN, YN, steps=1, batch_size=2, key=None), ValueError,
     r"ggn_minibatch: key is None"),
    ("baselines", "optax-key-None", lambda: baselines.train_optax(
        NET, params_net(), XN, YN, optimizer=optax.sgd(0.1), steps=2, batch_size=2, key=None),
     ValueError, r"train_optax: key is None"),
    ("adversarial", "random_noise-key-None", lambda: adversarial.random_noise(
        _loss_fn, np.zeros((2, 3)), np.zeros((2, 3)), eps=0.1, key=None), ValueError,
     r"random_noise: key is None"),
    ("adversarial", "pgd-key-str", lambda: adversarial.pgd(
        _loss_fn, np.zeros((2, 3)), np.zeros((2, 3)), eps=0.1, key="x"), ValueError,
     r"pgd: key must be a PRNG key or an int seed"),
    ("data", "sphere-key-None", lambda: data.sphere(3, 2, key=None), ValueError,
     r"sphere: key is None.*pass key="),
    ("data", "benchmark-key-None", lambda: data.benchmark_problem(key=None, n=4, d=2, m=8),
     ValueError, r"benchmark_problem: key is None"),
    # data splits name the argument the user passed
    ("data", "digits-n_train-too-big", lambda: data.digits(n_train=5000, key=0), ValueError,
     r"digits: n_train=5000 exceeds the 1797 available examples"),
    ("data", "digits-n_test-too-big", lambda: data.digits(n_test=1797, key=0), ValueError,
     r"digits: n_test=1797 leaves no training example"),
    ("data", "digits-both-too-big", lambda: data.digits(n_train=1000, n_test=1000, key=0),
     ValueError, r"n_train \+ n_test = 1000 \+ 1000 = 2000 exceeds"),
    ("data", "diabetes-n_train-too-big", lambda: data.diabetes(n_train=10**4, key=0),
     ValueError, r"diabetes: n_train=10000 exceeds the 442"),
    ("data", "digits-n_train-0", lambda: data.digits(n_train=0, key=0), ValueError,
     r"digits: n_train must be an integer >= 1, got 0"),
    ("data", "digits-n_test-negative", lambda: data.digits(n_test=-1, key=0), ValueError,
     r"digits: n_test must be an integer >= 0, got -1"),
    # unvalidated helpers, negative step counts
    ("linear", "loss-theta-shape", lambda: linear.loss(np.zeros(4), X35, Y3), ValueError,
     r"loss: theta must have shape \(p,\) or \(T, p\) with p=5"),
    ("linear", "loss-y-length", lambda: linear.loss(T5, X35, np.zeros(2)), ValueError,
     r"loss: y has length 2 but must have length 3"),
    ("linear", "loss-X-1d", lambda: linear.loss(T5, np.zeros(5), Y3), ValueError,
     r"loss: X must be a 2-D array"),
    ("linear", "predicted-negative-steps", lambda: linear.predicted_losses(
        X35, Y3, T5, lr=0.1, steps=-1), ValueError,
     r"predicted_losses: steps must be an integer >= 0, got -1"),
    ("linear", "predicted-theta-shape", lambda: linear.predicted_losses(
        X35, Y3, np.zeros(4), lr=0.1, steps=3), ValueError,
     r"predicted_losses: theta0 has length 4 but must have length 5"),
    ("linear", "predicted-lr-negative", lambda: linear.predicted_losses(
        X35, Y3, T5, lr=-1.0, steps=3), ValueError, r"predicted_losses: lr must be a finite"),
    ("linear", "gd-negative-steps", lambda: linear.gd(X35, Y3, T5, lr=0.01, steps=-3),
     ValueError, r"gd: steps must be an integer >= 0, got -3"),
    ("linear", "gd-float-steps", lambda: linear.gd(X35, Y3, T5, lr=0.01, steps=2.5),
     ValueError, r"gd: steps must be an integer"),
    ("linear", "linear_rate-lr", lambda: linear.linear_rate(X35, lr=0.0), ValueError,
     r"linear_rate: lr must be a finite number > 0"),
    ("linear", "gd-lr-nan", lambda: linear.gd(X35, Y3, T5, lr=float("nan"), steps=2),
     ValueError, r"gd: lr must be a finite number > 0"),
    ("linear", "X-string", lambda: linear.step_sizes("abc"), ValueError,
     r"step_sizes: X must be a numeric array"),
    ("linear", "X-None", lambda: linear.step_sizes(None), ValueError,
     r"step_sizes: X is None; pass an array"),
    ("shallow", "train_gd-negative-steps", lambda: shallow.train_gd(
        NET, params_net(), XN, YN, lr=0.1, steps=-1), ValueError,
     r"train_gd: steps must be an integer >= 0, got -1"),
    ("nonlinear", "gd-negative-steps", lambda: nl.gd(lin_model, T5, X35, Y3, lr=0.1, steps=-2),
     ValueError, r"gd: steps must be an integer >= 0"),
    ("generalization", "track-negative-steps", lambda: gen.track(
        lin_model, T5, X35, Y3, lr=0.1, steps=-1), ValueError, r"track: steps must be"),
    ("lowrank", "gd-negative-steps", lambda: lowrank.gd(
        np.ones((2, 3, 3)), np.ones(2), np.ones((3, 1)), lr=0.1, steps=-1), ValueError,
     r"steps must be an integer >= 0"),
    # impossible memory requests, before allocating
    ("linear", "gd-memory", lambda: linear.gd(X35, Y3, T5, lr=0.01, steps=10**12), ValueError,
     r"gd: the trajectory thetas .* needs [0-9.e+]+ GiB but the device has"),
    ("linear", "predicted-memory", lambda: linear.predicted_losses(
        X35, Y3, T5, lr=0.01, steps=10**13), ValueError, r"predicted_losses: steps=.* needs"),
    ("nonlinear", "gd-memory", lambda: nl.gd(lin_model, T5, X35, Y3, lr=0.01, steps=10**12,
                                            keep_params=True), ValueError,
     r"gd: the trajectory of steps=1000000000000 needs .* GiB"),
    ("shallow", "train_gd-memory", lambda: shallow.train_gd(
        NET, params_net(), XN, YN, lr=0.1, steps=10**13), ValueError, r"train_gd: steps=.* needs"),
    # NaN parameters are blamed on the parameters, not on lr
    ("shallow", "train_gd-nan-params", lambda: shallow.train_gd(
        NET, {"W": np.full((8, 3), np.nan), "v": np.ones(8)}, XN, YN, lr=0.1, steps=2),
     ValueError, r"train_gd: params contains 24 non-finite"),
    ("shallow", "apply-inf-params", lambda: shallow.apply(
        NET, {"W": np.ones((8, 3)), "v": np.r_[np.inf, np.ones(7)]}, XN), ValueError,
     r"apply: params contains 1 non-finite"),
    # kernels: symmetric and PSD within the stated tolerance
    ("ntk", "kreg-nonsymmetric", lambda: ntk.kernel_regression_gd(
        np.triu(psd()), np.ones((2, 4)), np.ones(4), np.zeros(4), np.zeros(2), lr=0.01, t=3),
     ValueError, r"kernel_regression_gd: K_train is not symmetric"),
    ("ntk", "kreg-negative-definite", lambda: ntk.kernel_regression_gd(
        -psd(), np.ones((2, 4)), np.ones(4), np.zeros(4), np.zeros(2), lr=0.01, t=3),
     ValueError, r"kernel_regression_gd: K_train is not positive semi-definite"),
    ("ntk", "kreg-not-square", lambda: ntk.kernel_regression_gd(
        np.ones((3, 4)), np.ones((2, 4)), np.ones(3), np.zeros(3), np.zeros(2), lr=0.01, t=3),
     ValueError, r"K_train must be square"),
    ("generalization", "spectrum-nonsymmetric", lambda: gen.spectrum(np.triu(psd())),
     ValueError, r"spectrum: K is not symmetric"),
    ("generalization", "spectrum-indefinite", lambda: gen.spectrum(np.diag([1.0, -1.0, 2.0])),
     ValueError, r"spectrum: K is not positive semi-definite \(lambda_min = -1"),
    ("generalization", "split-indefinite", lambda: gen.information_split(
        np.diag([1.0, -0.5]), np.ones(2), 1), ValueError,
     r"information_split: K is not positive semi-definite"),
    ("generalization", "energy-nonsymmetric", lambda: gen.energy_profile(
        np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2)), ValueError,
     r"energy_profile: K is not symmetric"),
    ("generalization", "fit_by_space-indefinite", lambda: gen.fit_by_space(
        -np.eye(3), np.ones(3), lr=0.1, t=2, k=1), ValueError,
     r"fit_by_space: K is not positive semi-definite"),
    # rank errors say whether precision is the cause
    ("linear", "closest-duplicate-rows", lambda: linear.closest_solution(
        np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), [1.0, 1.0], np.zeros(3)), ValueError,
     r"not a precision artefact \(X stays rank deficient in float64\); .*remove duplicated"),
    ("linear", "closest-n-gt-p", lambda: linear.closest_solution(
        np.ones((3, 2)), np.ones(3), np.zeros(2)), ValueError, r"needs n <= p"),
    ("os18", "constants-rank", lambda: os18.os18_constants(
        lin_model, np.zeros(3), np.array([[1.0, 0, 0], [1.0, 0, 0]]), np.ones(2), key=0),
     ValueError, r"J\(theta0\) is rank deficient .*not a precision artefact"),
    # Explorer misuse fails in the constructor
    ("explore", "explorer-draw-None", lambda: ntklib.Explorer(None, {"a": [1, 2]}), ValueError,
     r"Explorer: draw must be a function"),
    ("explore", "explorer-scalar-values", lambda: ntklib.Explorer(lambda fig, a: None,
                                                                  {"a": 3}), ValueError,
     r"Explorer: the values of parameter 'a' must be a sequence"),
    ("explore", "explorer-string-values", lambda: ntklib.Explorer(lambda fig, a: None,
                                                                  {"a": "abc"}), ValueError,
     r"parameter 'a' must be a sequence"),
    ("explore", "explorer-params-list", lambda: ntklib.Explorer(lambda fig, a: None, [1, 2]),
     ValueError, r"Explorer: params must be a dict"),
    ("explore", "explorer-compute-int", lambda: ntklib.Explorer(
        lambda fig, d, a: None, {"a": [1]}, compute=3), ValueError,
     r"Explorer: compute must be a function"),
    # the starting loss: an overflow of the squared residual is not blamed on f(theta0)
    ("nonlinear", "gd-loss-overflow", lambda: nl.gd(
        lin_model, np.ones(5), X35, Y3 + 1e200, lr=1e-3, steps=2),
     (ValueError,), r"gd: the model output model\(params0, X\) is finite but the loss|"
                    r"y contains .* non-finite"),
    # other modules' entry checks
    ("data", "corrupt-fraction", lambda: data.corrupt_labels(np.array([0, 1, 1]), 1.5, key=0,
                                                             num_classes=2), ValueError,
     r"corrupt_labels: fraction"),
    ("data", "sphere-n0", lambda: data.sphere(0, 3, key=0), ValueError, r"sphere: n must"),
    ("glm", "gd-negative-steps", lambda: glm.gd(X35, np.abs(Y3) + 0.5, T5, lr=0.1, steps=-1),
     ValueError, r"steps must be an integer >= 0"),
    ("glm", "unknown-link", lambda: glm.predict(T5, X35, link="nope"), ValueError, r"nope"),
    ("ntk", "empirical-d-mismatch", lambda: ntk.empirical_ntk(lin_model, T5, np.ones((2, 4))),
     ValueError, r"empirical_ntk"),
    ("baselines", "optax-not-optimizer", lambda: baselines.train_optax(
        NET, params_net(), XN, YN, optimizer="sgd", steps=2), ValueError,
     r"optimizer must be an optax GradientTransformation"),
    ("rates", "log_slope-length", lambda: rates.log_slope([1.0, 2.0], [1.0]), ValueError,
     r"log_slope"),
    ("rates", "convergence_order-short", lambda: rates.convergence_order([1.0]), ValueError,
     r"convergence_order"),
    ("ggn", "cost_table-n0", lambda: ggn.cost_table(0, 10), ValueError, r"cost_table: n must"),
    ("ntk", "du_requirements-lambda0", lambda: ntk.du_requirements(-1.0, 10), ValueError,
     r"du_requirements: lambda0"),
    ("adversarial", "project-eps", lambda: adversarial.project(np.zeros(3), eps=-1.0),
     ValueError, r"project: eps"),
    ("lowrank", "dof-rank", lambda: lowrank.degrees_of_freedom(3, 5), ValueError,
     r"degrees_of_freedom"),
]


MLP = mlp.MLP((8,))
K3 = np.eye(3)
HUGE = 10**12  # steps: a record of 10**12 steps needs terabytes on any machine


def params_mlp():
    return MLP.init(3, key=0)


def _sweep():
    return zhang17.CorruptionSweep(fractions=np.array([0.0]), steps=np.ones((1, 1)), budget=2,
                                   every=1)


ERRORS += [
    # impossible memory requests, before allocating (issue 14, class 9), in every trainer
    ("ggn", "ggn-memory", lambda: ggn.ggn(NET, params_net(), XN, YN, steps=HUGE), ValueError,
     r"ggn: the record of steps=1000000000000 \(192 bytes a step\) needs [0-9.e+]+ GiB but the "
     r"device has .* pass max_time"),
    ("ggn", "minibatch-memory", lambda: ggn.ggn_minibatch(
        NET, params_net(), XN, YN, steps=HUGE, batch_size=2, key=0), ValueError,
     r"ggn_minibatch: the record of steps=1000000000000 .* needs .* GiB"),
    ("baselines", "optax-memory", lambda: baselines.train_optax(
        NET, params_net(), XN, YN, optimizer=optax.sgd(0.1), steps=HUGE), ValueError,
     r"train_optax: the record of steps=1000000000000 .* needs .* GiB"),
    ("baselines", "tune_lr-memory", lambda: baselines.tune_lr(NET, params_net(), XN, YN,
                                                              steps=HUGE // 10), ValueError,
     r"tune_lr: the record of steps=100000000000 x 16 runs .* needs .* GiB .*use fewer steps\.$"),
    ("generalization", "track-memory", lambda: gen.track(lin_model, T5, X35, Y3, lr=0.01,
                                                         steps=HUGE), ValueError,
     r"track: the record at 1000000000001 steps .* needs .* GiB .*pass record="),
    ("lowrank", "gd-memory", lambda: lowrank.gd(np.ones((2, 3, 3)), np.ones(2), np.ones((3, 1)),
                                                lr=0.1, steps=HUGE), ValueError,
     r"gd: the trajectory of steps=1000000000000 .* needs .* GiB"),
    ("ntk", "kreg-memory", lambda: ntk.kernel_regression_gd(
        np.eye(1000), np.ones((2, 1000)), np.ones(1000), np.zeros(1000), np.zeros(2), lr=0.1,
        t=np.broadcast_to(3.0, (10**7,))), ValueError,
     r"kernel_regression_gd: the predictions train and test at 10000000 times .* needs .* GiB"),
    ("adversarial", "training-memory", lambda: adversarial.adversarial_training(
        lin_model, T5, X35, Y3, eps=0.1, lr=0.01, steps=HUGE), ValueError,
     r"adversarial_training: the record of steps=1000000000000 .* needs .* GiB"),
    # keys (class 2): mlp.init and tuning went around the shared key check
    ("mlp", "init-key-None", lambda: MLP.init(3, key=None), ValueError,
     r"mlp.init: key is None, but mlp.init needs a PRNG key"),
    ("mlp", "init-key-str", lambda: mlp.init(MLP, 3, key="a"), ValueError,
     r"mlp.init: key must be a PRNG key or an int seed, got a str"),
    ("tuning", "validation_split-key-None", lambda: tuning.validation_split(
        XN, YN, fraction=0.5, key=None), ValueError, r"validation_split: key is None"),
    ("tuning", "optax_trainer-key-None", lambda: tuning.optax_trainer(
        NET, params_net(), XN, YN, XN, YN, optimizer="sgd", steps=2, batch_size=2, key=None),
     ValueError, r"optax_trainer: key is None"),
    # empty inputs (class 4)
    ("mlp", "apply-n0", lambda: mlp.apply(MLP, params_mlp(), np.zeros((0, 3))), ValueError,
     r"mlp.apply: X is empty \(shape \(0, 3\)\)"),
    ("adversarial", "pgd-n0", lambda: adversarial.pgd(
        _loss_fn, np.zeros((0, 3)), np.zeros((0, 3)), eps=0.1, key=0), ValueError,
     r"pgd: x is empty \(shape \(0, 3\)\)"),
    ("adversarial", "robust_eval-n0", lambda: adversarial.robust_eval(
        lin_model, T5, np.zeros((0, 5)), np.zeros(0), eps=0.1, key=0), ValueError,
     r"robust_eval: X is empty"),
    ("generalization", "fit_fractions-n0", lambda: gen.fit_fractions(
        np.zeros(0), np.zeros(0), np.zeros(0)), ValueError, r"fit_fractions: y_true is empty"),
    ("zhang17", "sweep-no-fractions", lambda: zhang17.corruption_sweep(
        NET, XN, YN, [], seeds=1, steps=2, every=1), ValueError,
     r"corruption_sweep: fractions must be a non-empty sequence"),
    ("data", "clusterable-too-many-clusters", lambda: data.clusterable(
        3, 3, num_clusters=5, key=0), ValueError,
     r"clusterable: num_clusters=5 exceeds the n=3 points"),
    ("config", "select-empty", lambda: config.select({}), ValueError,
     r"select: configs must be a non-empty dict"),
    ("mlp", "gram_flops-n0", lambda: mlp.mlp_gram_flops(MLP, 0, 3, 3), ValueError,
     r"mlp_gram_flops: n1 must be an integer >= 1, got 0"),
    # NaN and non-real inputs (classes 5, 6)
    ("mlp", "apply-nan", lambda: mlp.apply(MLP, params_mlp(), np.full((2, 3), np.nan)),
     ValueError, r"mlp.apply: X contains 6 non-finite value"),
    ("linear", "gd-complex", lambda: linear.gd(1j * np.ones((1, 2)), [2.0], np.zeros(2), lr=0.25,
                                              steps=2), ValueError,
     r"gd: X must be a real array, got dtype complex"),
    ("ggn_theory", "quadratic_ratios-nan", lambda: ggn_theory.quadratic_ratios([1.0, np.nan]),
     ValueError, r"quadratic_ratios: residual norms must be finite"),
    # unvalidated helpers: wrong shapes, wrong types, wrong values (class 6)
    ("nonlinear", "loss-y-length", lambda: nl.loss(lin_model, T5, X35, np.ones(2)), ValueError,
     r"loss: the model output model\(params, X\) has shape \(3,\) but y has shape \(2,\)"),
    ("nonlinear", "jacobian-model-fails", lambda: nl.jacobian(lin_model, T5, np.ones((2, 4))),
     ValueError, r"jacobian: calling model\(params, X, \*args\) failed"),
    ("os18", "sigma_min_along-X", lambda: os18.sigma_min_along(
        lin_model, T5, np.zeros((2, 5)), np.ones((3, 4))), ValueError,
     r"sigma_min_along: calling model\(params0, X, \*args\) failed"),
    ("os18", "constants_table-type", lambda: os18.constants_table(3), ValueError,
     r"constants_table: c must be the OS18Constants"),
    ("ggn_theory", "step_functions-lr0", lambda: ggn_theory.step_functions(
        NET, params_net(), XN, YN, damping=0.1, lr=0.0), ValueError,
     r"step_functions: lr must be a finite number > 0"),
    ("ggn_theory", "step_functions-y", lambda: ggn_theory.step_functions(
        NET, params_net(), XN, np.ones(3), damping=0.1, lr=0.1), ValueError,
     r"step_functions: y has length 3 but must have length 4"),
    ("ggn_theory", "measure-methods", lambda: ggn_theory.measure_step_costs(
        NET, params_net(), XN, YN, methods=("sgd",)), ValueError,
     r"measure_step_costs: methods must name some of 'gd', 'ggn' and 'newton'"),
    ("ggn_theory", "measure-repeats0", lambda: ggn_theory.measure_step_costs(
        NET, params_net(), XN, YN, repeats=0), ValueError,
     r"measure_step_costs: repeats must be an integer >= 1, got 0"),
    ("adversarial", "per_example_loss-y", lambda: adversarial.per_example_loss(
        np.ones(3), np.ones(2)), ValueError, r"per_example_loss: y must have shape \(n,\) with n=3"),
    ("adversarial", "per_example_loss-float-classes", lambda: adversarial.per_example_loss(
        np.ones((3, 2)), np.ones(3), loss="cross_entropy"), ValueError,
     r"per_example_loss: cross_entropy needs integer class labels"),
    ("rates", "time_to_loss-list", lambda: rates.time_to_loss([1.0, 0.1], 0.5), ValueError,
     r"time_to_loss: traj must be a TimedTrajectory"),
    ("rates", "residual_norms-list", lambda: rates.residual_norms([1.0]), ValueError,
     r"residual_norms: traj must be a TimedTrajectory"),
    ("os19_paper", "grid_data-seed-None", lambda: os19_paper.grid_data(3, 2, seed=None),
     ValueError, r"grid_data: seed must be an integer >= 0, got None"),
    ("os19_paper", "grid_boundary-type", lambda: os19_paper.grid_boundary(3), ValueError,
     r"grid_boundary: grid must be a FitGrid"),
    ("zhang17", "sweep-fraction-above-1", lambda: zhang17.corruption_sweep(
        NET, XN, YN, [1.5], seeds=1, steps=2, every=1), ValueError,
     r"corruption_sweep: fractions must be .* in \[0, 1\], got \[1.5\]"),
    ("zhang17", "trend-type", lambda: zhang17.trend(3), ValueError,
     r"trend: sweep must be the CorruptionSweep"),
    ("tuning", "mse-y", lambda: tuning.mse(NET, params_net(), XN, np.ones(3)), ValueError,
     r"mse: y has length 3 but must have length 4"),
    ("tuning", "paired-y", lambda: tuning.paired_difference(
        NET, params_net(), params_net(), XN, np.ones(3)), ValueError,
     r"paired_difference: y has length 3 but must have length 4"),
    ("claims", "closest_minimum-shape", lambda: claims.closest_minimum_checks(
        X35, Y3, T5, np.zeros(4), T5), ValueError,
     r"closest_minimum_checks: theta_star must have shape \(5,\), got \(4,\)"),
    ("claims", "direct_path-shape", lambda: claims.direct_path_checks(
        np.zeros((3, 4)), X35, T5, T5, 0.1), ValueError,
     r"direct_path_checks: thetas must have shape \(k, 5\), got \(3, 4\)"),
    ("claims", "linear_rate-shape", lambda: claims.linear_rate_checks(
        np.ones(3), np.ones(2), 0.5), ValueError,
     r"linear_rate_checks: predicted must have shape \(3,\), got \(2,\)"),
    ("claims", "path_summary-shape", lambda: claims.path_summary(np.zeros((3, 4)), T5, T5),
     ValueError, r"path_summary: thetas must have shape \(k, 5\)"),
    ("claims", "attack-scalar", lambda: claims.attack_checks(1.0, 1.0, 1.0, 1.0, 0.5),
     ValueError, r"attack_checks: loss_pgd must have shape \(k,\), got \(\)"),
    ("claims", "step_memory-negative", lambda: claims.step_memory_checks(-1.0, 1.0, n=2, m=2,
                                                                        p=2), ValueError,
     r"step_memory_checks: mem_ggn must be a finite number of bytes >= 0"),
    # misleading messages: the function the user called is named, not a helper (class 7)
    ("linear", "min_norm-n-gt-p", lambda: linear.min_norm_solution(np.ones((3, 2)), np.ones(3)),
     ValueError, r"^min_norm_solution needs n <= p \(got n=3 > p=2\)"),
    ("os19_paper", "condition-activation", lambda: os19_paper.os19_condition(XN, "nope"),
     ValueError, r"^os19_condition: activation must be one of"),
    ("li20_paper", "bound_terms-k0", lambda: li20_paper.bound_terms(K3, np.ones(3), 0),
     ValueError, r"^bound_terms: the cutoff k must be an integer in 1..n=3"),
    ("li20_paper", "bound_terms-nonsymmetric", lambda: li20_paper.bound_terms(
        np.triu(np.ones((3, 3))), np.ones(3), 1), ValueError, r"^bound_terms: K is not symmetric"),
    ("data", "benchmark-train-mode", lambda: data.benchmark_problem(key=0, n=4, d=2, m=8,
                                                                   train="x"), ValueError,
     r"^benchmark_problem: ShallowNet: unknown train mode 'x'"),
    ("data", "benchmark-m0", lambda: data.benchmark_problem(key=0, n=4, d=2, m=0), ValueError,
     r"^benchmark_problem: m must be an integer >= 1, got 0"),
    # rank errors say whether precision is the cause (class 5)
    ("ggn", "step-duplicate-inputs", lambda: ggn.ggn_step(NET, params_net(), XN[[0, 0, 1, 2]],
                                                          YN), ValueError,
     r"ggn_step: the Gram J J\^T \(4 x 4\) is singular .* not a precision artefact \(J J\^T "
     r"stays rank deficient in float64\)"),
    ("ggn", "ggn-duplicate-inputs", lambda: ggn.ggn(NET, params_net(), XN[[0, 0, 1, 2]], YN,
                                                    steps=1), ValueError,
     r"ggn: the Gram J J\^T .* not a precision artefact"),
    ("lowrank", "closest_factor-rank", lambda: lowrank.closest_factor(
        np.diag([1.0, 0.5, 0.0]), np.ones((3, 1))), ValueError,
     r"closest_factor: U has k=1 columns but X_star has rank r=2 \(eigenvalue 2 is 0.5 x the "
     r"largest, above the rank tolerance .*: a real direction, not round-off\)"),
    # Explorer misuse fails in the constructor (class 9)
    ("explore", "explorer-draw-signature", lambda: ntklib.Explorer(lambda fig, b: None,
                                                                   {"a": [1]}), ValueError,
     r"Explorer: draw cannot be called as draw\(fig, a=...\)"),
    ("explore", "explorer-compute-signature", lambda: ntklib.Explorer(
        lambda fig, data, a: None, {"a": [1]}, compute=lambda b: b), ValueError,
     r"Explorer: compute cannot be called as compute\(a=...\)"),
    ("explore", "explorer-draw-without-data", lambda: ntklib.Explorer(
        lambda fig, a: None, {"a": [1]}, compute=lambda a: a), ValueError,
     r"Explorer: draw cannot be called as draw\(fig, data, a=...\)"),
    ("explore", "player-unknown-fixed", lambda: ntklib.Explorer(
        lambda fig, a, b: None, {"a": [1, 2], "b": [3]}).player("a", c=1), ValueError,
     r"Explorer.player: unknown fixed parameter\(s\) c"),
]


@pytest.mark.parametrize("module, call, exc, match",
                         [pytest.param(m, c, e, r, id=f"{m}:{i}") for m, i, c, e, r in ERRORS])
def test_error(module, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- warnings


def _diverge_cases():
    Xs = XN / np.linalg.norm(XN, axis=1, keepdims=True)
    lam = float(np.linalg.norm(X35, 2) ** 2)
    return [
        ("shallow", "train_gd", lambda: shallow.train_gd(NET, params_net(), XN, YN, lr=50.0,
                                                         steps=30),
         r"train_gd: the loss diverged with lr=50.*safe step is lr < [0-9.]+ \(2/lambda_max"),
        ("shallow", "train_sgd", lambda: shallow.train_sgd(NET, params_net(), XN, YN, lr=50.0,
                                                           steps=30, batch_size=2, key=0),
         r"train_sgd: the loss diverged with lr=50"),
        ("nonlinear", "gd", lambda: nl.gd(lin_model, T5, X35, Y3, lr=10.0 / lam, steps=100),
         r"gd: the loss diverged with lr=.*safe step is lr < " + f"{2.0 / lam:.3g}"[:3]),
        ("nonlinear", "sgd", lambda: nl.sgd(lin_model, T5, X35, Y3, lr=30.0 / lam, steps=200,
                                            batch_size=1, key=jax.random.key(1)),
         r"sgd: the loss diverged"),
        ("generalization", "track", lambda: gen.track(lin_model, T5, X35, Y3, lr=10.0 / lam,
                                                      steps=100),
         r"track: the loss diverged"),
        ("glm", "gd", lambda: glm.gd(X35, np.abs(Y3) + 0.5, T5, lr=1e3, steps=60),
         r"the loss diverged with lr=1000"),
        ("ggn", "ggn", lambda: ggn.ggn(NET, params_net(), XN, YN, steps=6, lr=50.0, warmup=False),
         r"ggn: the loss diverged with lr=50"),
        ("baselines", "train_optax", lambda: baselines.train_optax(
            NET, params_net(), XN, YN, optimizer=optax.sgd(40.0), steps=30, warmup=False),
         r"train_optax: the loss diverged"),
        ("adversarial", "adversarial_training", lambda: adversarial.adversarial_training(
            net_model, params_net(), Xs, YN, eps=0.01, lr=1e3, steps=20, attack_steps=1),
         r"adversarial_training: the loss diverged with lr=1000"),
        ("lowrank", "gd", lambda: lowrank.gd(
            lowrank.gaussian_measurements(12, 3, key=0), np.ones(12), 10.0 * np.ones((3, 2)),
            lr=1.0, steps=30), r"gd: the loss diverged with lr=1"),
    ]


@pytest.mark.parametrize("module, call, match",
                         [pytest.param(m, c, r, id=f"{m}:{i}") for m, i, c, r in _diverge_cases()])
def test_divergence_warns(module, call, match):
    with pytest.warns(DivergenceWarning, match=match):
        call()


def test_divergence_is_a_runtime_warning_with_one_stated_factor():
    assert issubclass(DivergenceWarning, RuntimeWarning)
    assert issubclass(PrecisionWarning, RuntimeWarning)
    assert ntklib.DIVERGENCE_FACTOR == 1e3


def test_divergence_rule_at_the_factor():
    # The rule itself, on a hand-made record: 999x the start is fine, 1001x warns; a loss
    # that is finite everywhere but grows is caught in both precisions (not only overflow).
    from ntklib._checks import check_divergence
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_divergence("f", np.array([1.0, 999.0], np.float32), 0.1)
    with pytest.warns(DivergenceWarning, match=r"f: the loss diverged with lr=0.1: it exceeded "
                                               r"1e\+03 x its start at step 2"):
        assert check_divergence("f", np.array([1.0, 5.0, 1001.0]), 0.1)
    with pytest.raises(ValueError, match=r"starting loss L\(theta0\) is not finite"):
        check_divergence("f", np.array([np.inf, 1.0]), 0.1)


def test_no_warning_when_converging():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        out = shallow.train_gd(NET, params_net(), XN, YN, lr=0.05, steps=10)
        assert float(out.losses[-1]) < float(out.losses[0])
        lam = float(np.linalg.norm(X35, 2) ** 2)
        nl.gd(lin_model, T5, X35, Y3, lr=1.0 / lam, steps=20)


def test_precision_warning_names_x64(precision):
    # cond(X) = 1e5: in float32 the relative error is about 1e5 * 1.2e-7 ~ 1e-2, so a float64
    # input downcast with x64 off warns; with x64 on nothing is lost and nothing warns.
    U, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(6, 3)))
    X = (U * np.array([1.0, 1e-2, 1e-5])).T  # (3, 6), singular values 1, 1e-2, 1e-5
    y = np.ones(3)
    if precision == "x32":
        with pytest.warns(PrecisionWarning, match=r"closest_solution: X is float64 but "
                                                  r"jax_enable_x64 is off"):
            linear.closest_solution(X, y, np.zeros(6))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrecisionWarning)
            theta = linear.closest_solution(X, y, np.zeros(6))
        np.testing.assert_allclose(np.asarray(theta), np.linalg.pinv(X) @ y, rtol=1e-8)


def test_rank_error_blames_precision_in_float32(precision):
    # cond(X) = 1e6 is full rank in float64 but below float32's resolution max(n, p) eps
    # = 6 * 1.2e-7 = 7e-7 relative... 1e-6 passes, so use 1e-7 (cond 1e7).
    U, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(6, 3)))
    X = (U * np.array([1.0, 1e-3, 1e-7])).T
    if precision == "x32":
        with pytest.raises(ValueError, match=r"the rank loss is a precision limit of float32.*"
                                             r"jax_enable_x64"):
            linear.closest_solution(X, np.ones(3), np.zeros(6))
    else:
        theta = linear.closest_solution(X, np.ones(3), np.zeros(6))
        np.testing.assert_allclose(X @ np.asarray(theta), np.ones(3), atol=1e-6)


def test_lr_that_underflows(precision):
    # lr = 1e-50 is 0 in float32 (smallest subnormal 1.4e-45): the run would never move
    if precision == "x32":
        with pytest.raises(ValueError, match=r"gd: lr=1e-50 rounds to 0 in float32"):
            linear.gd(X35, Y3, T5, lr=1e-50, steps=2)
    else:
        out = linear.gd(X35, Y3, T5, lr=1e-50, steps=2)
        assert float(out.losses[-1]) <= float(out.losses[0])


# --------------------------------------------------------------------------- correct results


def test_int_seed_equals_legacy_key():
    a = shallow.init(NET, 3, key=7)
    b = shallow.init(NET, 3, key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(np.asarray(a["W"]), np.asarray(b["W"]))


@pytest.mark.parametrize("key", [0, np.int64(3), jax.random.PRNGKey(1), jax.random.key(1)],
                         ids=["int", "np.int64", "legacy", "typed"])
def test_key_kinds_work(key):
    # every kind of key gives a valid draw, in several modules
    assert shallow.init(NET, 3, key=key)["W"].shape == (8, 3)
    assert data.sphere(3, 2, key=key).shape == (3, 2)
    assert lowrank.planted(4, 1, key=key).shape == (4, 4)
    out = nl.sgd(lin_model, T5, X35, Y3, lr=0.01, steps=2, batch_size=1, key=key)
    assert out.losses.shape == (3,)


def test_typed_and_legacy_keys_agree():
    # jax.random.key(s) and PRNGKey(s) hold the same bits: same draw
    a = data.sphere(4, 3, key=jax.random.key(5))
    b = data.sphere(4, 3, key=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_lambda0_uses_the_float64_input(precision):
    # lambda0 is computed in float64 NumPy from the input itself; with x64 off the float64
    # input is not rounded to float32 first. Oracle: the closed form evaluated in NumPy.
    X = np.array([[1.0, 0.0], [np.cos(1e-4), np.sin(1e-4)]])
    dot = X @ X.T
    H = dot * (np.pi - np.arccos(np.clip(dot, -1, 1))) / (2 * np.pi)
    np.testing.assert_allclose(ntk.lambda0(X), np.linalg.eigvalsh(H)[0], rtol=1e-8)


def test_kernel_within_tolerance_is_accepted():
    # a PSD Gram with rounding-level asymmetry and a tiny negative eigenvalue passes
    K = psd()
    K[0, 1] += 1e-9 * np.abs(K).max()
    lam = np.linalg.eigvalsh(K)
    spec = gen.spectrum(K)
    np.testing.assert_allclose(np.asarray(spec.eigvals), lam[::-1], rtol=1e-4)


def test_zero_steps_is_the_start():
    out = linear.gd(X35, Y3, T5, lr=0.01, steps=0)
    assert out.thetas.shape == (1, 5)
    np.testing.assert_allclose(float(out.losses[0]), 0.5 * Y3 @ Y3, rtol=1e-5)
    np.testing.assert_allclose(linear.predicted_losses(X35, Y3, T5, lr=0.01, steps=0),
                               [0.5 * Y3 @ Y3], rtol=1e-12)


def test_linear_loss_on_a_trajectory():
    th = np.stack([T5, np.ones(5)])
    expect = [0.5 * np.sum((X35 @ t - Y3) ** 2) for t in th]
    np.testing.assert_allclose(np.asarray(linear.loss(th, X35, Y3)), expect, rtol=1e-5)


def test_explorer_good_input():
    ex = ntklib.Explorer(lambda fig, a: None, {"a": (1, 2, 3)})
    assert ex.defaults == {"a": 2}


def test_os18_constants_warn_on_downcast(precision):
    # J = X for the linear model; cond(X) = 1e5 makes cond * eps(float32) ~ 1e-2 > 1e-4
    U, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(6, 3)))
    X = (U * np.array([1.0, 1e-2, 1e-5])).T
    if precision == "x32":
        with pytest.warns(PrecisionWarning, match=r"os18_constants: .* jax_enable_x64 is off"):
            os18.os18_constants(lin_model, np.zeros(6), X, np.ones(3), key=0, n_samples=2)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrecisionWarning)
            c = os18.os18_constants(lin_model, np.zeros(6), X, np.ones(3), key=0, n_samples=2)
        assert c.alpha > 0


def test_no_precision_warning_when_well_conditioned(precision):
    # a float64 input that float32 represents well enough (cond ~ 3) does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        theta = linear.closest_solution(X35, Y3, T5)
    np.testing.assert_allclose(np.asarray(theta), np.linalg.pinv(X35) @ Y3, rtol=1e-4)


def test_one_hot_of_no_labels_is_empty():
    # zero labels with a stated class count is a well-defined (0, c) matrix, not an error
    assert data.one_hot(np.zeros(0, int), 3).shape == (0, 3)


# --------------------------------------------------------------------------- precision (class 5)


def _ill_conditioned(seed=3):
    """(3, 6) with singular values 1, 1e-2, 1e-5 (cond 1e5: 1e5 * eps(float32) ~ 1e-2)."""
    U, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(6, 3)))
    return (U * np.array([1.0, 1e-2, 1e-5])).T


#: near-duplicate unit inputs: every NTK Gram on them has cond ~ 1e7 (measured 5e7..6e7)
XD = np.array([[1.0, 0.0, 0.0], [1.0, 1e-4, 0.0], [0.0, 1.0, 0.0]])


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def _downcast_cases():
    X = _ill_conditioned()
    y = np.ones(3)
    lin_K = X @ X.T
    pinv = np.linalg.pinv(X)
    return [
        ("glm.closest_minimizer", r"closest_minimizer: X is float64",
         lambda: glm.closest_minimizer(X, y, np.zeros(6), link="identity"), pinv @ y),
        ("glm.guarantee", r"guarantee: X is float64",
         lambda: glm.guarantee(X, y, np.zeros(6), link="identity").theta_star, pinv @ y),
        ("glm.gd", r"gd: X is float64",
         lambda: glm.gd(X, y, np.zeros(6), lr=0.5, steps=1, link="identity").dists_to_star[0],
         np.linalg.norm(pinv @ y)),
        ("linear.row_space_projector", r"row_space_projector: X is float64",
         lambda: linear.row_space_projector(X), pinv @ X),
        ("ntk.empirical_ntk", r"empirical_ntk: the input \(params, X1 or X2\) is float64",
         lambda: ntk.empirical_ntk(lin_model, np.zeros(6), X), lin_K),
        ("ntk.structured_ntk", r"structured_ntk: the input .* is float64",
         lambda: ntk.structured_ntk(NET, _f64(params_net()), XD),
         lambda: ntk.empirical_ntk(net_model, _f64(params_net()), XD)),
        ("mlp.mlp_ntk", r"mlp_ntk: the input .* is float64",
         lambda: mlp.mlp_ntk(MLP, _f64(params_mlp()), XD),
         lambda: ntk.empirical_ntk(MLP.apply, _f64(params_mlp()), XD)),
    ]


@pytest.mark.parametrize("case", range(7), ids=[c[0] for c in _downcast_cases()])
def test_downcast_warns_names_x64(precision, case):
    # x64 off: the float64 input is computed in float32 with cond >= 1e5 (relative error
    # cond * 1.2e-7 >= 1e-2 > PRECISION_RTOL = 1e-4), so it warns and names jax_enable_x64.
    # x64 on: nothing is downcast, nothing warns, and the answer matches a float64 oracle
    # (pinv, X X^T, or the Jacobian contraction) to 1e-6 relative (cond 1e7 * eps64 = 2e-9).
    name, match, call, oracle = _downcast_cases()[case]
    if precision == "x32":
        with pytest.warns(PrecisionWarning, match=match + r".*jax_enable_x64 is off"):
            call()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrecisionWarning)
            got = np.asarray(call())
        want = np.asarray(oracle() if callable(oracle) else oracle)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())


def test_float32_input_does_not_warn(precision):
    # the same ill-conditioned Gram from float32 inputs: nothing was downcast, nothing warns
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        ntk.structured_ntk(NET, params_net(), jnp.asarray(XD, jnp.float32))
        linear.row_space_projector(jnp.asarray(X35, jnp.float32))


def test_ggn_rank_error_blames_float32(precision):
    # two inputs 1e-5 apart: cond(J) ~ 3e5, so cond(J J^T) ~ 7e10: singular in float32 (1/eps =
    # 8e6) but resolved in float64 (1/eps = 4.5e15). The error says so; in float64 it runs.
    X = np.array(XN)
    X[1] = X[0] + 1e-5
    if precision == "x32":
        with pytest.raises(ValueError, match=r"ggn_step: the Gram J J\^T \(4 x 4\) is singular.*"
                                             r"the rank loss is a precision limit of float32.*"
                                             r"jax_enable_x64"):
            ggn.ggn_step(NET, params_net(), X, YN)
    else:
        _, info = ggn.ggn_step(NET, params_net(), X, YN)
        assert info.cond > 1e8  # the Gram is ill-conditioned, yet solvable in float64


def test_lowrank_rank_ignores_float32_rounding(precision):
    # a rank-1 PSD X_star = v v^T: its rounding to float32 (x64 off) adds eigenvalues of size
    # eps(float32) ||X|| ~ 1e-7 ||X||, below the tolerance 10 d eps; the rank is 1 in both
    # precisions, so k = 1 fits (before the fix the float64 tolerance counted rank 3).
    v = np.random.default_rng(0).normal(size=(5, 1))
    out = lowrank.closest_factor(v @ v.T, np.ones((5, 1)))
    assert out.rank == 1
    np.testing.assert_allclose(np.asarray(out.U) @ np.asarray(out.U).T, v @ v.T, rtol=1e-5,
                               atol=1e-5 * float((v.T @ v).item()))


def _tiny_lr_cases():
    A = lowrank.gaussian_measurements(6, 3, key=0)
    return [
        ("lowrank.gd", r"gd: lr=1e-50 rounds to 0 in float32",
         lambda: lowrank.gd(A, np.ones(6), np.ones((3, 2)), lr=1e-50, steps=2)),
        ("generalization.track", r"track: lr=1e-50 rounds to 0 in float32",
         lambda: gen.track(lin_model, T5, X35, Y3, lr=1e-50, steps=2)),
        ("generalization.fit_by_space", r"fit_by_space: lr=1e-50 rounds to 0",
         lambda: gen.fit_by_space(K3, np.ones(3), lr=1e-50, t=2, k=1)),
        ("ntk.kernel_regression_gd", r"kernel_regression_gd: lr=1e-50 rounds to 0",
         lambda: ntk.kernel_regression_gd(K3, np.ones((1, 3)), np.ones(3), np.zeros(3),
                                          np.zeros(1), lr=1e-50, t=3)),
        ("ggn.ggn", r"ggn: lr=1e-50 rounds to 0 in float32",
         lambda: ggn.ggn(NET, params_net(), XN, YN, steps=1, lr=1e-50, warmup=False)),
        ("adversarial.adversarial_training", r"adversarial_training: lr=1e-50 rounds to 0",
         lambda: adversarial.adversarial_training(lin_model, T5, X35, Y3, eps=0.1, lr=1e-50,
                                                  steps=1, attack_steps=1)),
    ]


@pytest.mark.parametrize("case", range(6), ids=[c[0] for c in _tiny_lr_cases()])
def test_lr_that_underflows_everywhere(precision, case):
    # lr = 1e-50 is 0 in float32 (smallest subnormal 1.4e-45): the run would never move and say
    # nothing. In float64 it is a valid (tiny) step: the call runs.
    _, match, call = _tiny_lr_cases()[case]
    if precision == "x32":
        with pytest.raises(ValueError, match=match + r".*jax_enable_x64"):
            call()
    else:
        call()


# --------------------------------------------------------------------------- correct results


def test_memory_check_skipped_with_max_time():
    # with max_time the run stops in time, so a huge steps is only a cap: it runs
    out = baselines.train_optax(NET, params_net(), XN, YN, optimizer=optax.sgd(0.01),
                                steps=HUGE, max_time=0.05, chunk=5)
    assert 1 <= out.losses.size < 10**6


def test_explorer_accepts_kwargs_draw():
    ex = ntklib.Explorer(lambda fig, **kw: None, {"a": [1, 2]})
    assert ex.defaults == {"a": 1} or ex.defaults == {"a": 2}


def test_fit_fractions_without_corrupted_points():
    # no corrupted point: the corrupted shares are undefined (NaN), the clean one is exact
    out = gen.fit_fractions(np.array([1.0, -1.0]), np.array([1, -1]), np.array([1, -1]))
    assert np.isnan(out.true_on_corrupted) and float(out.correct_on_clean) == 1.0
