"""The Gram sharded over a device mesh: exact against one device, on 8 simulated CPU devices.

XLA fixes the number of host devices when jax first loads, so the checks run in a fresh
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``. Oracle: the same Gram
on one device (the unsharded path). Each device computes the same per-entry dot products as
one device, only with other matrix shapes, so in float64 the two agree to a few ulps of the
largest entry times the inner dimension; we allow ``1e-12`` relative (p <= 1e3 terms, eps
2.2e-16).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(r"""
    import os, sys, tempfile
    import numpy as np
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    from ntklib.ntk import empirical_ntk, structured_ntk, gram
    from ntklib.mlp import MLP, mlp_ntk
    from ntklib.shallow import ShallowNet

    assert len(jax.devices()) == 8, jax.devices()
    mesh = jax.make_mesh((8,), ("rows",))
    mesh2d = jax.make_mesh((4, 2), ("a", "b"))
    X = jax.random.normal(jax.random.PRNGKey(1), (37, 5), jnp.float64)   # 37: not a multiple of 8
    X2 = jax.random.normal(jax.random.PRNGKey(2), (11, 5), jnp.float64)

    def rel(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return float(np.abs(a - b).max() / np.abs(b).max())

    res = {}
    net = ShallowNet(24, "tanh", "ntk", "vW")
    p = net.init(5, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    one = structured_ntk(net, p, X)
    K8 = structured_ntk(net, p, X, mesh=mesh)
    res["structured sym"] = rel(K8, one)
    res["structured shards"] = len(K8.sharding.device_set)
    res["structured 2d mesh"] = rel(structured_ntk(net, p, X, mesh=mesh2d), one)
    res["structured auto"] = rel(structured_ntk(net, p, X, mesh="auto"), one)
    res["structured X2"] = rel(structured_ntk(net, p, X, X2, mesh=mesh),
                               structured_ntk(net, p, X, X2))

    res["empirical sym"] = rel(empirical_ntk(net.apply, p, X, block_size=4, mesh=mesh), one)
    res["empirical X2"] = rel(empirical_ntk(net.apply, p, X, X2, block_size=3, mesh=mesh),
                              structured_ntk(net, p, X, X2))

    mlp = MLP((9, 7), "gelu", "ntk", True, 1.2, 0.5)
    q = mlp.init(5, key=jax.random.PRNGKey(3), dtype=jnp.float64)
    mone = mlp_ntk(mlp, q, X)
    res["mlp sym"] = rel(mlp_ntk(mlp, q, X, mesh=mesh), mone)
    res["mlp gram X2"] = rel(gram(mlp, q, X, X2, mesh=mesh), mlp_ntk(mlp, q, X, X2))

    # host memmap, block by block with a progress bar, from the mesh
    d = tempfile.mkdtemp()
    path = os.path.join(d, "K.npy")
    Km = empirical_ntk(net.apply, p, X, block_size=2, mesh=mesh, out=path, progress=True)
    res["memmap type"] = type(Km).__name__
    res["memmap"] = rel(np.load(path), one)
    Ks = structured_ntk(net, p, X, mesh=mesh, out=np.zeros((37, 37)), progress=False)
    res["host array"] = rel(Ks, one)
    for k, v in res.items():
        print(f"{k}={v}")
""")


@pytest.fixture(scope="module")
def results(unit_xla_flags):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count=8 {unit_xla_flags}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for line in proc.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    out["_stderr"] = proc.stderr
    return out


@pytest.mark.parametrize("case", ["structured sym", "structured 2d mesh", "structured auto",
                                  "structured X2", "empirical sym", "empirical X2", "mlp sym",
                                  "mlp gram X2", "memmap", "host array"])
def test_sharded_gram_exact_against_one_device(results, case):
    assert float(results[case]) < 1e-12, (case, results[case])


def test_gram_really_sharded_over_eight_devices(results):
    # a result living on one device would pass the exactness checks too
    assert int(results["structured shards"]) == 8


def test_memmap_written_with_progress_bar(results):
    assert results["memmap type"] == "memmap"
    assert "empirical_ntk" in results["_stderr"]  # tqdm's bar, written to stderr
