#!/usr/bin/env python3
"""Floor and peer sections of ``bench_ntk.py`` (``--floor``, ``--peer``); see its docstring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "benchmarks" / ".peer_venv"
PEER_PINS = ["neural-tangents==0.6.5", "jax==0.4.25", "jaxlib==0.4.25", "numpy==1.26.4",
             "tensorflow==2.15.1", "tf2jax==0.3.6"]

# Runs inside the peer venv (jax 0.4.25): the same net as ntklib's, built from neural-tangents'
# own layers (stax.Dense, ntk parameterization: z = W_std / sqrt(fan_in) * h @ W + b_std * b,
# W_std = b_std = 1, W stored (fan_in, fan_out)), params and X from an .npz, Grams and
# best-of-N times back. Its STRUCTURED_DERIVATIVES rules need this form: on a plain-jnp f that
# divides after the product, (h @ W.T) / sqrt(fan_in), they ran at the speed of the Jacobian
# contraction (measured 2026-12-07: 7.3 s against 0.036 s with stax on the MLP, n=512).
PEER_SRC = r"""
import sys, json, time, numpy as np, jax, jax.numpy as jnp
import neural_tangents as nt
from neural_tangents import stax
d = np.load(sys.argv[1]); cfg = json.loads(sys.argv[2])
L = cfg["layers"]; act = {"relu": stax.Relu}[cfg["activation"]]
layers, params = [], []
for l in range(L):
    W = jnp.asarray(d[f"W{l}"]).T
    has_b = f"b{l}" in d
    layers.append(stax.Dense(W.shape[1], W_std=1.0, b_std=1.0 if has_b else None,
                             parameterization="ntk"))
    params.append((W, jnp.asarray(d[f"b{l}"]) if has_b else None))
    if l < L - 1:
        layers.append(act()); params.append(())
_, f, _ = stax.serial(*layers)
X = jnp.asarray(d["X"])
out = {}
for name in cfg["impls"]:
    impl = getattr(nt.NtkImplementation, name)
    fn = jax.jit(nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=impl))
    K = fn(X, None, params).block_until_ready()
    ts = []
    for _ in range(cfg["repeats"]):
        t = time.perf_counter(); fn(X, None, params).block_until_ready(); ts.append(time.perf_counter() - t)
    out[name] = min(ts)
    np.save(sys.argv[3] + f".{name}.npy", np.asarray(K).reshape(X.shape[0], X.shape[0]))
print(json.dumps(out))
"""


def ensure_peer() -> Path:
    py = PEER_VENV / "bin" / "python"
    if py.exists():
        return py
    print(f"creating {PEER_VENV} (neural-tangents 0.6.5 pinned; about 2 GB, minutes)",
          file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PINS], check=True)
    return py


def _best(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def floor_table(n, d, m, repeats):
    """structured_ntk against the SYRK floor (2nmd + 2n^2m) / rate, float32 and float64."""
    import numpy as np
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(ROOT))
    from ntklib import _tiles
    from ntklib.ntk import structured_ntk
    from ntklib.shallow import ShallowNet

    net = ShallowNet(m, "relu", "ntk", "vW")
    rows = []
    for dt in (jnp.float32, jnp.float64):
        params = net.init(d, key=jax.random.PRNGKey(0), dtype=dt)
        X = jax.random.normal(jax.random.PRNGKey(1), (n, d), dt)
        P = np.random.default_rng(0).standard_normal((n, m)).astype(dt)
        res = {k: [] for k in ("syrk", "never", "always")}
        Ks = {}
        for mode in ("never", "always"):
            _tiles.HOST_BLAS = mode
            Ks[mode] = np.asarray(structured_ntk(net, params, X))  # compile
        for _ in range(repeats):  # interleaved: the machine is shared
            res["syrk"].append(_best(lambda: P @ P.T, 1))
            for mode in ("never", "always"):
                _tiles.HOST_BLAS = mode
                res[mode].append(_best(lambda: structured_ntk(net, params, X).block_until_ready(), 1))
        _tiles.HOST_BLAS = "auto"
        t = {k: min(v) for k, v in res.items()}
        rate = n * n * m / t["syrk"]
        floor = (2.0 * n * m * d + 2.0 * n * n * m) / rate
        agree = float(np.abs(Ks["never"] - Ks["always"]).max() / np.abs(Ks["never"]).max())
        rows.append((np.dtype(dt).name, rate, floor, t["never"], t["always"], agree))
    print(f"\nThe Gram against its floor (n={n}, d={d}, m={m}; best of {repeats}, interleaved; "
          "SYRK rate = n^2 m / time of numpy P @ P.T, measured in this run)")
    print(header() + "\n")
    print("| dtype | SYRK rate GF/s | floor s | JAX path s | ratio | host SYRK path s | ratio | "
          "paths agree (rel) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rate, floor, tj, th, agree in rows:
        print(f"| {name} | {rate / 1e9:.0f} | {floor:.3f} | {tj:.3f} | {tj / floor:.2f} | "
              f"{th:.3f} | {th / floor:.2f} | {agree:.1e} |")


EPS32 = 2.0**-23  # float32 unit round-off (machine epsilon)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages now (the machine may be shared)."""
    try:
        return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unavailable"


def header(argv=None) -> str:
    """Date (UTC), exact command, CPUs and load: printed above every table."""
    cmd = " ".join([Path(sys.executable).name, *(sys.argv if argv is None else argv)])
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; command: {cmd}; "
            f"{os.cpu_count()} CPUs; {loadavg()}")


def gram_tol(p: int) -> float:
    r"""Tolerance for two float32 Grams of the same net to agree, relative to ``max |K|``.

    An entry of K is a sum of p products; with independent rounding errors its float32 error
    grows like :math:`\sqrt p\,\epsilon` (a random walk), times a safety factor 4. It is a
    round-off model, fixed before any measurement; a wrong Gram (a missing layer, a wrong
    scale) is off by O(1/L), far above it.
    """
    return 4.0 * EPS32 * float(p) ** 0.5


JACOBIAN_MAX_N = 512  # neural-tangents' Jacobian contraction takes 15 s and more per call above


def peer_table(sizes, mlp_size, repeats, rounds):
    """ntklib against neural-tangents 0.6.5 on the same nets, interleaved, float32.

    Each round times, one after the other, ntklib's ``structured_ntk`` (one-hidden-layer net
    only), ntklib's ``mlp_ntk`` (the same weights as an ``MLP``), then neural-tangents'
    STRUCTURED_DERIVATIVES and JACOBIAN_CONTRACTION in one subprocess of the peer venv (each
    best of ``repeats`` after a compile); a side's time is its minimum over the rounds.
    Returns the rows as dicts; raises SystemExit(1) after the table when a Gram disagrees.
    """
    import numpy as np
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(ROOT))
    from ntklib.mlp import MLP, mlp_ntk
    from ntklib.ntk import structured_ntk
    from ntklib.shallow import ShallowNet

    py = ensure_peer()
    cases = [("1-hidden", n, d, (m,)) for n, d, m in sizes]
    cases.append(("MLP", *mlp_size))
    all_impls = ["STRUCTURED_DERIVATIVES", "JACOBIAN_CONTRACTION"]
    print(f"\nntklib (jax {jax.__version__}) against neural-tangents 0.6.5 (jax 0.4.25, own venv "
          f"benchmarks/.peer_venv), float32, relu, ntk parameterization, one output, X ~ N(0, I); "
          f"each side best of {repeats} per round after a compile, {rounds} rounds with the "
          f"sides interleaved (ntklib, peer, ntklib, peer, ...), minimum over rounds.")
    print(header())
    print("\n| net | n | d | widths | p | ntklib structured_ntk s | ntklib mlp_ntk s | "
          "nt STRUCTURED s | nt JACOBIAN s | nt best / ntklib best | max rel diff of Grams | "
          "tol 4 eps32 sqrt(p) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ntk_peer_"))
    rows, bad = [], []
    for name, n, d, widths in cases:
        X = jax.random.normal(jax.random.PRNGKey(1), (n, d), jnp.float32)
        # Above JACOBIAN_MAX_N only NT's structured path runs: it is NT's best wherever both run.
        impls = all_impls if n <= JACOBIAN_MAX_N else all_impls[:1]
        ours = {}
        if name == "1-hidden":
            net = ShallowNet(widths[0], "relu", "ntk", "vW")
            p = net.init(d, key=jax.random.PRNGKey(0), dtype=jnp.float32)
            layers = [{"W": p["W"]}, {"W": p["v"][None, :]}]
            mnet = MLP(widths, "relu", "ntk", bias=False)  # the same function and parameters
            ours["structured_ntk"] = lambda: structured_ntk(net, p, X)
            npar = net.num_params(d)
        else:
            mnet = MLP(widths, "relu", "ntk", bias=True)
            layers = mnet.init(d, key=jax.random.PRNGKey(0), dtype=jnp.float32)
            npar = mnet.num_params(d)
        ours["mlp_ntk"] = lambda: mlp_ntk(mnet, layers, X)
        arrs = {"X": np.asarray(X)}
        for l, lay in enumerate(layers):
            for k, v in lay.items():
                arrs[f"{k[0]}{l}"] = np.asarray(v)
        np.savez(tmp / "in.npz", **arrs)
        cfg = json.dumps({"layers": len(layers), "activation": "relu", "impls": impls,
                          "repeats": repeats})
        Ks = {k: np.asarray(f().block_until_ready()) for k, f in ours.items()}  # compile
        K = Ks["mlp_ntk"]
        t_ours = {k: [] for k in ours}
        theirs = {k: [] for k in impls}
        env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("PYTHONPATH", None)
        load = []
        for _ in range(rounds):
            for k, f in ours.items():
                t_ours[k].append(_best(lambda: f().block_until_ready(), repeats))
            proc = subprocess.run([str(py), "-c", PEER_SRC, str(tmp / "in.npz"), cfg,
                                   str(tmp / "K")], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                theirs[k].append(v)
            load.append(os.getloadavg()[0])
        scale = np.abs(K).max()
        diff = max([float(np.abs(np.load(tmp / f"K.{k}.npy") - K).max() / scale) for k in impls]
                   + [float(np.abs(Kk - K).max() / scale) for Kk in Ks.values()])
        tol = gram_tol(npar)
        if not diff <= tol:
            bad.append(f"{name} n={n}: Grams differ by {diff:.1e} > {tol:.1e}")
        to = {k: min(v) for k, v in t_ours.items()}
        tt = {k: min(v) for k, v in theirs.items()}
        best_ours, best_nt = min(to.values()), min(tt.values())
        row = dict(net=name, n=n, d=d, widths=widths, p=npar, ours=to, nt=tt,
                   ratio=best_nt / best_ours, diff=diff, tol=tol, load=load)
        rows.append(row)
        print(f"| {name} | {n} | {d} | {widths} | {npar:.3g} | "
              f"{to['structured_ntk']:.4f} | " if "structured_ntk" in to else
              f"| {name} | {n} | {d} | {widths} | {npar:.3g} | - | ", end="")
        jac = f"{tt[impls[1]]:.4f}" if len(impls) > 1 else "- (n > 512)"
        print(f"{to['mlp_ntk']:.4f} | {tt[impls[0]]:.4f} | {jac} | "
              f"{row['ratio']:.2f}x | {diff:.1e} | {tol:.1e} |", flush=True)
    print(f"\nafter the table: {loadavg()}; 1-min load after each round: "
          + "; ".join(f"{r['net']} n={r['n']}: " + ", ".join(f"{x:.1f}" for x in r["load"])
                      for r in rows))
    one = [r["ratio"] for r in rows if r["net"] == "1-hidden"]
    mlp = [r["ratio"] for r in rows if r["net"] == "MLP"]
    print(f"goal: ntklib >= 3.5x faster than neural-tangents' best on the one-hidden-layer net: "
          f"{'MET' if min(one) >= 3.5 else 'NOT MET'} (measured {min(one):.2f}x to "
          f"{max(one):.2f}x over the {len(one)} sizes).")
    print(f"goal: ntklib at least as fast as neural-tangents' best on the MLP: "
          f"{'MET' if min(mlp) >= 1.0 else 'NOT MET'} (measured {mlp[0]:.2f}x).")
    print("Grams agree to float32 round-off (max rel diff <= 4 eps32 sqrt(p)): "
          + ("PASS" if not bad else "FAIL: " + "; ".join(bad)))
    if bad:
        raise SystemExit(1)
    return rows
