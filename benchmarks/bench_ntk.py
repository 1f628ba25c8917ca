#!/usr/bin/env python3
"""Benchmark: NTK Gram of a one-hidden-layer ReLU net, three ways, against the matmul rate.

    python benchmarks/bench_ntk.py            # the issue's sizes (a few minutes on 2 cores)
    python benchmarks/bench_ntk.py --quick    # small sizes, seconds
    python benchmarks/bench_ntk.py --floor    # structured_ntk against the SYRK floor only
    python benchmarks/bench_ntk.py --peer     # also neural-tangents 0.6.5 side by side
    python benchmarks/bench_ntk.py --peer --no-floor   # the side by side only

``--floor`` (and every full run) times ``structured_ntk`` at (n, d, m) in float32 and float64 on
its JAX path and on its host-SYRK path, interleaved with numpy's ``P @ P.T`` (BLAS SYRK), and
prints the floor ``(2nmd + 2n^2 m) / SYRK rate`` and each path's ratio to it. ``--peer``
creates ``benchmarks/.peer_venv`` on first use (neural-tangents 0.6.5 pinned to jax/jaxlib
0.4.25, numpy 1.26.4, tensorflow 2.15.1, tf2jax 0.3.6; about 2 GB, git-ignored), then times
neural-tangents' ``empirical_ntk_fn`` (STRUCTURED_DERIVATIVES and JACOBIAN_CONTRACTION) on the
same networks and weights as ntklib, interleaving the two processes, checks that the Grams
agree to float32 round-off (max relative difference <= 4 eps32 sqrt(p); exit 1 otherwise),
and prints the ratios at three sizes of the one-hidden-layer net (n = 128, 256, 512; d = 128,
m = 8192, p = 1.06e6; neural-tangents takes seconds a call here) and for a two-hidden-layer ReLU MLP (n = 512, d = 64, widths 512, 512,
biases, p = 2.96e5), with the date, the command and the load average (the machine may be
shared: compare only the ratios, taken within one run).

In one run it

1. measures the float32 matmul rate of this machine (best of several N x N products), and
   again right after every method, because the machine may be shared: each row's share is
   relative to the rate measured next to it;
2. times, in float32, on ``ShallowNet(m, "relu", "ntk", "vW")`` with inputs on the sphere:

   * ``structured``: :func:`ntklib.ntk.structured_ntk`, the closed form
     (flops ``2nmd + 4n^2 m + 2n^2 d``);
   * ``empirical``: :func:`ntklib.ntk.empirical_ntk` with ``--block-size``
     (flops: the Jacobian contractions actually done, ``2 * pairs * b^2 * p``, about ``n^2 p``
     since only blocks on and above the diagonal are computed; the issue's floor is
     ``2 n^2 p / matmul rate``);
   * ``naive-jacrev``: ``J = jax.jacrev(lambda th: f(th, X))(th)`` then ``J @ J.T``;
   * ``naive-vmap``: ``J = jax.vmap(jax.jacrev(per-example f))`` then ``J @ J.T``;

   in three configurations: A ``(n, d, m)`` = the issue's (2048, 128, 16384); B
   ``(n_large, d, m_large)`` = (1024, 128, 8192), p = 1.06e6, with ``--block-size-large`` 128
   (the 2 GiB target); C ``(n_small, d, m_large)`` = (256, 128, 8192), small enough for the
   naive methods to fit in memory, so the speed-up over them is measured.

Each method runs in its own subprocess (XLA allocates outside Python, so tracemalloc would
see nothing). "run peak" is the peak RSS during the timed run above the RSS just before it
(Linux ``clear_refs``/``VmHWM``), compared with the documented bound of ``empirical_ntk``;
"total peak" is the whole process's ``getrusage`` max RSS, compiler and runtime included. A
naive method is skipped, and the table says so, when XLA's compiled memory analysis says it
needs more than ``--mem-cap-gib`` or 80% of the memory available now. Timings are the best of
``--repeats`` runs after a compile (``empirical`` and the naive methods run once, after
compiling; ``empirical`` compiles on two blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2.0**30


# --------------------------------------------------------------------------- worker side


def _rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _mem_available() -> float:
    from ntklib._tiles import host_memory_available  # the library's reading of /proc/meminfo

    return host_memory_available()



def _vm(field: str) -> float:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM), or nan."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> float:
    """Give freed heap back to the OS, reset the peak-RSS counter (Linux clear_refs 5), and
    return the RSS now."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _vm("VmRSS")


def _matmul_rate(N: int, repeats: int = 3) -> float:
    import jax
    import jax.numpy as jnp

    from ntklib._batching import best_time  # the library's best-of-N timer

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    A = jax.random.normal(k1, (N, N), jnp.float32)
    B = jax.random.normal(k2, (N, N), jnp.float32)
    f = jax.jit(jnp.matmul)
    f(A, B).block_until_ready()
    return 2.0 * N**3 / best_time(lambda: f(A, B).block_until_ready(), repeats, warmup=False)


def worker(a) -> dict:
    """Run one method in this process and return its measurements (printed as JSON)."""
    sys.path.insert(0, str(ROOT))
    import jax
    import jax.numpy as jnp

    from ntklib._batching import best_time

    out = {"method": a.worker}
    if a.worker == "matmul":
        rate = _matmul_rate(a.matmul_n, max(a.repeats, 5))
        out.update(time=2.0 * a.matmul_n**3 / rate, flops=2.0 * a.matmul_n**3, rss=_rss_bytes())
        return out

    from ntklib.data import sphere
    from ntklib.ntk import empirical_ntk, structured_ntk
    from ntklib.shallow import ShallowNet, init

    n, d, m = a.n, a.d, a.m
    net = ShallowNet(m, "relu", "ntk", "vW")
    params = init(net, d, key=jax.random.PRNGKey(0), dtype=jnp.float32)
    X = sphere(n, d, key=jax.random.PRNGKey(1)).astype(jnp.float32)
    p = m * d + m
    out.update(n=n, d=d, m=m, p=p)
    check_rows = min(n, 64)

    def rel_err(K_rows):  # against the closed form on the first rows
        ref = structured_ntk(net, params, X[:check_rows], X)
        return float(jnp.max(jnp.abs(K_rows - ref)) / jnp.max(jnp.abs(ref)))

    if a.worker == "baseline":
        jax.jit(lambda x: x + 1)(X).block_until_ready()
        out.update(rss=_rss_bytes())
        return out

    def measure(run, repeats):
        """Time ``run`` (already compiled); peak RSS of the timed runs above the RSS before."""
        before = _reset_peak()
        out["time"] = best_time(run, repeats, warmup=False)
        out["run_peak"] = _vm("VmHWM") - before

    if a.worker == "structured":
        t = time.perf_counter()
        structured_ntk(net, params, X).block_until_ready()
        out["first_call"] = time.perf_counter() - t
        measure(lambda: structured_ntk(net, params, X).block_until_ready(), a.repeats)
        out["flops"] = 2.0 * n * m * d + 4.0 * n * n * m + 2.0 * n * n * d

    elif a.worker == "empirical":
        nb = -(-n // a.block_size)
        b = -(-n // nb)
        t = time.perf_counter()  # compile every block function on two blocks
        empirical_ntk(net.apply, params, X[: min(n, 2 * b)],
                      block_size=a.block_size).block_until_ready()
        out["first_call"] = time.perf_counter() - t
        res = {}

        def run():
            res["K"] = None  # drop the previous Gram first
            res["K"] = empirical_ntk(net.apply, params, X, block_size=a.block_size,
                                     progress=False).block_until_ready()

        measure(run, 1)
        out["flops"] = 2.0 * (nb * (nb + 1) // 2) * b * b * p
        out["floor_flops"] = 2.0 * n * n * p
        out["bound"] = 4.0 * (2 * b * p + n * n + b * b + 2**23)
        out["block"] = b
        out["rel_err"] = rel_err(res["K"][:check_rows])

    else:  # naive methods: J materialized, then J J^T
        from jax.flatten_util import ravel_pytree

        theta, unravel = ravel_pytree(params)
        if a.worker == "naive-jacrev":
            def gram(theta, X):
                J = jax.jacrev(lambda t: net.apply(unravel(t), X))(theta)
                return J @ J.T
        else:
            def gram(theta, X):
                J = jax.vmap(jax.jacrev(lambda t, x: net.apply(unravel(t), x[None])[0]),
                             in_axes=(None, 0))(theta, X)
                return J @ J.T

        t = time.perf_counter()
        compiled = jax.jit(gram).lower(theta, X).compile()
        out["first_call"] = time.perf_counter() - t
        try:
            ma = compiled.memory_analysis()
            need = float(ma.temp_size_in_bytes + ma.output_size_in_bytes)
        except Exception:  # memory analysis not available on this backend
            need = 2 * 4.0 * n * p
        out["need"] = need
        cap = min(a.mem_cap_gib * GIB, 0.8 * _mem_available())
        if need > cap:
            out["skipped"] = (f"skipped: needs {need / GIB:.1f} GiB (XLA memory analysis) > "
                              f"{cap / GIB:.1f} GiB allowed")
            return out
        res = {}

        def run():
            res["K"] = None
            res["K"] = compiled(theta, X).block_until_ready()

        measure(run, a.naive_repeats)
        out["flops"] = 2.0 * n * n * p
        out["rel_err"] = rel_err(res["K"][:check_rows])

    out["rss"] = _rss_bytes()
    # the matmul rate right now: the machine may be shared, so every method gets its own
    out["rate"] = _matmul_rate(a.matmul_n, 5)
    return out


# --------------------------------------------------------------------------- driver side


def run_worker(method, args, n, d, m, block_size) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(n), "--d", str(d),
           "--m", str(m), "--block-size", str(block_size), "--repeats", str(args.repeats),
           "--naive-repeats", str(args.naive_repeats), "--matmul-n", str(args.matmul_n),
           "--mem-cap-gib", str(args.mem_cap_gib)]
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["?"])[-1]
        if proc.returncode < 0:
            msg = f"killed by signal {-proc.returncode} (out of memory?)"
        return {"method": method, "skipped": f"failed: {msg}", "wall": wall}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall"] = wall
    print(f"  {method:<13} done in {wall:6.1f} s", file=sys.stderr, flush=True)
    return res


def fmt(x, spec, missing="-"):
    return missing if x is None else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--n", type=int, default=None, help="points (default 2048; quick 256)")
    ap.add_argument("--d", type=int, default=None, help="input dimension (default 128; quick 32)")
    ap.add_argument("--m", type=int, default=None, help="width (default 16384; quick 1024)")
    ap.add_argument("--n-large", type=int, default=None,
                    help="points of the p ~ 1e6 config (default 1024; quick 128)")
    ap.add_argument("--m-large", type=int, default=None,
                    help="width of the p ~ 1e6 config (default 8192, p = m(d+1); quick 2048)")
    ap.add_argument("--n-small", type=int, default=None,
                    help="points of config C, where naive jacrev fits (default 256; quick 64)")
    ap.add_argument("--block-size", type=int, default=256, help="empirical_ntk block size")
    ap.add_argument("--block-size-large", type=int, default=128,
                    help="empirical_ntk block size for the p ~ 1e6 config (2 GiB target)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-repeats", type=int, default=1)
    ap.add_argument("--matmul-n", type=int, default=None, help="matmul size (default 4096)")
    ap.add_argument("--mem-cap-gib", type=float, default=12.0,
                    help="skip a naive method whose XLA memory estimate exceeds this")
    ap.add_argument("--methods", default="structured,empirical,naive-vmap,naive-jacrev")
    ap.add_argument("--floor", action="store_true", help="only the SYRK-floor table")
    ap.add_argument("--peer", action="store_true",
                    help="also neural-tangents 0.6.5 side by side (creates its venv)")
    ap.add_argument("--peer-large", action="store_true",
                    help="with --peer: one-hidden-layer sizes n = 512, 1024, 2048 (m = 8192, "
                         "16384, 16384), NT's Jacobian path only at n <= 512")
    ap.add_argument("--no-floor", action="store_true",
                    help="with --peer: skip the SYRK-floor table")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    q = args.quick
    args.n = args.n or (256 if q else 2048)
    args.d = args.d or (32 if q else 128)
    args.m = args.m or (1024 if q else 16384)
    args.n_large = args.n_large or (128 if q else 1024)
    args.m_large = args.m_large or (2048 if q else 8192)
    args.n_small = args.n_small or (64 if q else 256)
    args.matmul_n = args.matmul_n or (2048 if q else 4096)

    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import _peer_bench

    if args.floor or args.peer:
        if not args.no_floor:
            _peer_bench.floor_table(args.n, args.d, args.m, args.repeats)
        if args.peer:
            sizes = [(64, 16, 256), (128, 32, 512), (256, 32, 1024)] if q else \
                [(512, 128, 8192), (1024, 128, 16384), (2048, 128, 16384)] if args.peer_large \
                else [(128, 128, 8192), (256, 128, 8192), (512, 128, 8192)]
            mlp = (128, 32, (128, 128)) if q else (512, 64, (512, 512))
            _peer_bench.peer_table(sizes, mlp, min(args.repeats, 2), 2)
        return 0
    methods = [s.strip() for s in args.methods.split(",") if s.strip()]
    print(f"bench_ntk: {os.cpu_count()} CPUs, {_mem_available() / GIB:.1f} GiB available",
          file=sys.stderr)
    mm = run_worker("matmul", args, 0, 0, 0, 0)
    rate = mm["flops"] / mm["time"]
    configs = [("A", args.n, args.d, args.m, args.block_size),
               ("B", args.n_large, args.d, args.m_large, args.block_size_large),
               ("C", args.n_small, args.d, args.m_large, args.block_size)]
    rows = []
    for name, n, d, m, bs in configs:
        print(f"config {name}: n={n} d={d} m={m} p={m * (d + 1)}", file=sys.stderr)
        base = run_worker("baseline", args, n, d, m, bs)
        for meth in methods:
            r = run_worker(meth, args, n, d, m, bs)
            r.update(config=name, n=n, d=d, m=m, p=m * (d + 1), base_rss=base.get("rss"))
            rows.append(r)

    # ------------------------------------------------------------------ the table
    from importlib.metadata import version

    print()
    print(f"float32 matmul rate ({args.matmul_n}x{args.matmul_n}, best of 5): "
          f"{rate / 1e9:.0f} GFLOP/s at the start, on {os.cpu_count()} CPUs "
          f"(jax {version('jax')}); each row also measures it right after its run "
          "('rate'), and '% rate' uses that one.")
    print()
    head = ("cfg", "n", "d", "m", "p", "method", "time s", "GFLOP", "GFLOP/s", "rate",
            "% rate", "run peak GiB", "bound GiB", "total peak GiB", "rel err", "note")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        t, fl, rr = r.get("time"), r.get("flops"), r.get("rate")
        gfs = fl / t / 1e9 if (t and fl) else None
        share = 100 * fl / t / rr if (t and fl and rr) else None
        note = r.get("skipped", "")
        if r["method"] == "empirical" and t:
            floor = r["floor_flops"] / rr
            note = f"b={r['block']}; floor 2n^2p/rate = {floor:.3g} s; time/floor = {t / floor:.2f}"
        elif r["method"].startswith("naive") and "need" in r and not note:
            note = f"XLA estimate {r['need'] / GIB:.1f} GiB"
        print("| " + " | ".join([
            r["config"], str(r["n"]), str(r["d"]), str(r["m"]), f"{r['p']:.3g}", r["method"],
            fmt(t, ".3f"), fmt(fl / 1e9 if fl else None, ".1f"), fmt(gfs, ".0f"),
            fmt(rr / 1e9 if rr else None, ".0f"), fmt(share, ".0f"),
            fmt(r["run_peak"] / GIB if r.get("run_peak") is not None else None, ".2f"),
            fmt(r["bound"] / GIB if r.get("bound") else None, ".2f"),
            fmt(r["rss"] / GIB if r.get("rss") else None, ".2f"),
            fmt(r.get("rel_err"), ".1e"), note]) + " |")

    # ------------------------------------------------------------------ against the targets
    print()
    for name, *_ in configs:
        by = {r["method"]: r for r in rows if r["config"] == name}
        s, e = by.get("structured", {}), by.get("empirical", {})
        if s.get("time"):
            line = (f"config {name}: structured at {100 * s['flops'] / s['time'] / s['rate']:.0f}%"
                    " of the matmul rate (target >= 70%)")
            for nv in ("naive-jacrev", "naive-vmap"):
                if by.get(nv, {}).get("time"):
                    line += f"; {by[nv]['time'] / s['time']:.0f}x faster than {nv}"
                elif nv in by:
                    line += f"; {nv} skipped"
            print(line + " (target >= 30x).")
        if e.get("time"):
            floor = e["floor_flops"] / e["rate"]
            print(f"config {name}: empirical_ntk {e['time']:.1f} s = {e['time'] / floor:.2f}x its "
                  f"floor 2n^2p/rate (target <= 2x); run peak {e['run_peak'] / GIB:.2f} GiB vs "
                  f"documented bound {e['bound'] / GIB:.2f} GiB; whole process "
                  f"{e['rss'] / GIB:.2f} GiB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
