"""Profiles, seed offsets, smoke runs and cost estimates (ntklib.config)."""

import jax
import numpy as np
import pytest

from ntklib import config


@pytest.fixture
def env(monkeypatch):
    for var in (config.ENV_VAR, config.SEED_VAR, config.SMOKE_VAR):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_medium_is_a_profile(env):
    env.setenv(config.ENV_VAR, "medium")
    assert config.profile() == "medium"


def test_seed_offset_zero_is_plain_key(env):
    # The oracle: with no offset, key(s) is jax.random.key(s), bit for bit.
    a = jax.random.key_data(config.key(5))
    b = jax.random.key_data(jax.random.key(5))
    np.testing.assert_array_equal(a, b)


def test_seed_offset_changes_every_draw_and_keeps_seeds_apart(env):
    base = {s: np.asarray(jax.random.normal(config.key(s), (4,))) for s in range(20)}
    env.setenv(config.SEED_VAR, "1")
    assert config.seed_offset() == 1
    shifted = {s: np.asarray(jax.random.normal(config.key(s), (4,))) for s in range(20)}
    # No shifted draw equals any unshifted one: the offset never maps seed s onto seed s'.
    for s in shifted:
        for t in base:
            assert not np.allclose(shifted[s], base[t])


@pytest.mark.parametrize("bad", ["x", "-1", "1.5"])
def test_bad_seed_offset(env, bad):
    env.setenv(config.SEED_VAR, bad)
    with pytest.raises(ValueError, match=config.SEED_VAR):
        config.seed_offset()


def test_key_rejects_non_int(env):
    with pytest.raises(TypeError, match="int seed"):
        config.key(1.0)
    with pytest.raises(ValueError, match=">= 0"):
        config.key(-1)


def test_iters_cut_only_in_smoke(env):
    assert config.iters(1000) == 1000
    env.setenv(config.SMOKE_VAR, "1")
    assert config.smoke()
    assert config.iters(1000) == config.SMOKE_ITERS
    assert config.iters(2) == 2
    env.setenv(config.SMOKE_VAR, "maybe")
    with pytest.raises(ValueError, match=config.SMOKE_VAR):
        config.smoke()


def test_estimate_seconds_is_flops_over_rate(env):
    c = config.estimate("gram", flops=2.4e12, peak_bytes=1e9)
    # 2.4e12 flop at 30% of 8e12 flop/s = 1 s exactly.
    assert c.seconds(config.T4, 0.3) == pytest.approx(1.0)
    text = config.report([c])
    assert "gram" in text and "profile=" in text


def test_report_refuses_an_over_budget_full_profile(env):
    big = config.estimate("too big", flops=1e16, peak_bytes=1e9)
    with pytest.raises(ValueError, match="exceeds the budget"):
        config.report([big])
    heavy = config.estimate("too much memory", flops=1.0, peak_bytes=13e9)
    with pytest.raises(ValueError, match="exceeds the budget"):
        config.report([heavy])


def test_select_cuts_iterations_not_sizes(env):
    from typing import NamedTuple

    class C(NamedTuple):
        n: int
        steps: int
        grid_steps: int
        epochs: int
        widths: tuple
        lr: float

    cfgs = {"small": C(64, 1000, 500, 20, (8, 16), 0.5), "full": C(1024, 9000, 900, 90, (8, 64), 0.5)}
    env.setenv(config.ENV_VAR, "full")
    assert config.select(cfgs) == cfgs["full"]
    env.setenv(config.SMOKE_VAR, "1")
    got = config.select(cfgs)
    assert got == C(1024, config.SMOKE_ITERS, config.SMOKE_ITERS, config.SMOKE_ITERS, (8, 64), 0.5)
    env.setenv(config.ENV_VAR, "medium")
    with pytest.raises(ValueError, match="no 'medium' profile"):
        config.select(cfgs)


def test_estimate_roofline_and_loop_latency(env):
    # Oracle by hand: 2.2e11 bytes at 220 GB/s is 1 s, more than the 1e9 flop (0.4 ms at 30% of
    # 8 TFLOP/s), and 1e4 loop steps at 30 us add 0.3 s.
    c = config.estimate("scan", flops=1e9, peak_bytes=1e6, traffic_bytes=2.2e11, steps=1e4)
    assert c.seconds(config.T4, 0.3) == pytest.approx(1.3)
    # Compute-bound: the traffic term does not add to the flop term, it competes with it.
    d = config.estimate("gram", flops=2.4e12, peak_bytes=1e9, traffic_bytes=1.1e11)
    assert d.seconds(config.T4, 0.3) == pytest.approx(1.0)
    # float64 on a T4 runs at 1/32 of float32.
    assert d.seconds(config.T4_FP64, 0.3) == pytest.approx(32.0)
    text = config.report([c, d], title="the full profile:")
    assert text.splitlines()[0] == "the full profile:" and "float32" in text
    assert "float64" in config.report([d], device=config.T4_FP64, budget_s=1e3)
    with pytest.raises(ValueError, match=">= 0"):
        config.estimate("bad", flops=1.0, peak_bytes=1.0, steps=-1)


def test_every_is_cut_in_a_smoke_run(env):
    from typing import NamedTuple

    class C(NamedTuple):
        steps: int
        every: int
        n: int

    env.setenv(config.ENV_VAR, "small")
    env.setenv(config.SMOKE_VAR, "1")
    # steps between measurements count iterations: cut, so at least one measurement is made
    assert config.select({"small": C(800, 25, 64)}) == C(config.SMOKE_ITERS, config.SMOKE_ITERS, 64)
