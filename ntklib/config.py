r"""Size profiles, seed offsets and smoke runs: how a notebook chooses its sizes.

Every chapter notebook chooses its sizes with :func:`profile`. The maths never
branches on the device; only the sizes do.

* ``small``: a CPU and CI (each notebook in about a minute on 2 cores);
* ``medium``: about 2-3 times the small sizes, still CPU-feasible (a few minutes),
  used to check that a verdict is not an accident of the small sizes;
* ``full``: a GPU (Colab), sized by :func:`estimate` to at most 5 minutes and 12 GB
  on a T4-class device.

Three environment variables steer a run without touching the notebook's code:

* ``NTKLIB_PROFILE`` = ``small`` | ``medium`` | ``full`` (default: ``full`` on an
  accelerator, ``small`` on the CPU);
* ``NTKLIB_SEED`` = an integer offset added to every key made by :func:`key`, so the
  same notebook is re-run on other random draws (``0`` by default);
* ``NTKLIB_SMOKE=1``: keep the profile's *shapes* but cut every iteration count passed
  through :func:`iters` to a handful, and report verdicts instead of raising. It
  catches shape errors, memory blow-ups and code paths that only a large profile takes,
  in minutes.
"""

from __future__ import annotations

import numbers
import os
from typing import NamedTuple

import jax

__all__ = [
    "PROFILES",
    "T4",
    "T4_FP64",
    "Cost",
    "Device",
    "estimate",
    "iters",
    "key",
    "profile",
    "report",
    "seed_offset",
    "select",
    "smoke",
]

PROFILES = ("small", "medium", "full")
ENV_VAR = "NTKLIB_PROFILE"
SEED_VAR = "NTKLIB_SEED"
SMOKE_VAR = "NTKLIB_SMOKE"
SMOKE_ITERS = 3


def profile() -> str:
    """Return the size profile, ``"small"``, ``"medium"`` or ``"full"``.

    The environment variable ``NTKLIB_PROFILE`` wins when set; otherwise ``"full"``
    on a GPU or TPU backend and ``"small"`` on the CPU (``jax.default_backend()``).

    >>> import os; os.environ["NTKLIB_PROFILE"] = "small"; profile()
    'small'
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        if value not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={value!r} is not a profile; use one of {', '.join(PROFILES)}."
            )
        return value
    return "small" if jax.default_backend() == "cpu" else "full"


def seed_offset() -> int:
    """The offset ``NTKLIB_SEED`` adds to every seed given to :func:`key` (default 0).

    >>> import os; os.environ["NTKLIB_SEED"] = "2"; seed_offset()
    2
    """
    value = os.environ.get(SEED_VAR, "").strip()
    if not value:
        return 0
    try:
        offset = int(value)
    except ValueError:
        raise ValueError(f"{SEED_VAR}={value!r} must be an integer seed offset, e.g. {SEED_VAR}=1.") from None
    if offset < 0:
        raise ValueError(f"{SEED_VAR}={offset} must be >= 0.")
    return offset


def key(seed: int) -> jax.Array:
    """A new-style PRNG key for ``seed + seed_offset()``.

    Notebooks make every key with this function, so ``NTKLIB_SEED=k`` re-runs a whole
    notebook on other random draws: seeds that differ stay different, and
    ``NTKLIB_SEED=0`` (the default) gives exactly ``jax.random.key(seed)``.
    Offsets are multiplied by a large prime (1,000,003) so that the shifted seeds of one
    notebook never coincide with the unshifted seeds of the same notebook, whose seeds
    are small integers.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"key needs an int seed, got {type(seed).__name__}.")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"key needs a seed >= 0, got {seed}.")
    return jax.random.key(seed + 1_000_003 * seed_offset())


def env_flag(var: str, meaning: str) -> bool:
    """An on/off environment variable: False when unset or ``0``/``false``/``no``, True for
    ``1``/``true``/``yes``; anything else is a ``ValueError`` that says what ``1`` means."""
    value = os.environ.get(var, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{var}={value!r}: use 1 ({meaning}) or 0.")


def smoke() -> bool:
    """True when ``NTKLIB_SMOKE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return env_flag(SMOKE_VAR, "smoke run")


def iters(n: int) -> int:
    """An iteration count: ``n`` itself, or at most ``SMOKE_ITERS`` in a smoke run.

    Only *iteration counts* (steps, epochs, restarts) go through here, never sizes:
    a smoke run keeps every array's shape.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"iters needs a non-negative int, got {n!r}.")
    return min(n, SMOKE_ITERS) if smoke() else n


class Device(NamedTuple):
    """A device class for estimates: its sustained rate, its memory, bandwidth and step latency."""

    name: str
    flops_per_s: float  # sustained FLOP/s on dense matmuls (float32 unless the name says)
    memory_bytes: float
    bandwidth_bytes_per_s: float = 220e9  # sustained memory bandwidth (a T4: 320 GB/s peak)
    step_latency_s: float = 3e-5  # one iteration of a compiled loop (lax.scan) on the device
    dtype: str = "float32"  # the precision flops_per_s is for


#: A Colab T4: about 8 TFLOP/s sustained in float32 (65 TFLOP/s fp16 peak; 8.1 fp32 peak),
#: 15 GB of memory, of which we allow 12 GB, and 320 GB/s peak memory bandwidth (about 220 GB/s
#: sustained, what a memory-bound loop gets). One step of a
#: compiled loop costs at least a few kernel launches and the loop's test: we count 30 us.
T4 = Device("T4", 8e12, 15e9)

#: The same T4 in float64 (``jax_enable_x64`` notebooks): 1/32 of its float32 rate, 0.25 TFLOP/s.
T4_FP64 = Device("T4", 0.25e12, 15e9, dtype="float64")


class Cost(NamedTuple):
    """The cost of one experiment of a notebook.

    ``traffic_bytes`` (memory read and written) and ``steps`` (iterations of compiled loops)
    default to 0: an experiment made of large matmuls is priced by its flops alone.
    """

    name: str
    flops: float
    peak_bytes: float
    traffic_bytes: float = 0.0
    steps: float = 0.0

    def seconds(self, device: Device = T4, efficiency: float = 0.3) -> float:
        r"""Estimated time: a roofline plus the loop overhead,

        .. math::

           t = \max\Big(\frac{\text{flops}}{e\,R}, \frac{\text{traffic}}{B}\Big)
               + \text{steps}\cdot t_{\rm step},

        with ``e = efficiency`` of the device's rate ``R`` and its sustained bandwidth ``B``.
        ``efficiency = 0.3`` is deliberately pessimistic: small matmuls, scans and
        compilation keep a GPU far from its peak. Small problems run many short loop steps,
        whose launch latency no flop count sees: ``steps`` prices it.
        """
        compute = self.flops / (efficiency * device.flops_per_s)
        memory = self.traffic_bytes / device.bandwidth_bytes_per_s
        return max(compute, memory) + self.steps * device.step_latency_s


def estimate(name: str, *, flops: float, peak_bytes: float, traffic_bytes: float = 0.0,
             steps: float = 0.0) -> Cost:
    """Record the cost of one experiment (counted by hand from the config's sizes).

    Args:
      name: what the experiment is (printed).
      flops: floating-point operations.
      peak_bytes: the largest device memory it holds at once.
      traffic_bytes: bytes read and written (for memory-bound loops, e.g. a narrow input
        dimension); optional.
      steps: iterations of compiled loops (each costs the device's step latency); optional.
    """
    if not (flops >= 0 and peak_bytes >= 0 and traffic_bytes >= 0 and steps >= 0):
        raise ValueError(f"estimate {name!r} needs flops, peak_bytes, traffic_bytes and steps >= 0.")
    return Cost(name, float(flops), float(peak_bytes), float(traffic_bytes), float(steps))


def report(costs, *, device: Device = T4, budget_s: float = 300.0, budget_bytes: float = 12e9,
           efficiency: float = 0.3, title: str | None = None) -> str:
    """The config cell's printout: profile, seed offset, smoke flag, and each experiment's cost.

    Returns the text (the notebook prints it); ``title``, when given, replaces the first line
    (e.g. to say which profile's sizes the estimate is of). Raises ``ValueError`` when the *full*
    profile's total estimate exceeds the budget (5 minutes, 12 GB on a T4), so a
    notebook whose full profile grew past what Colab can run fails in CI, where the
    estimate is computed from the full sizes even though the small ones run.
    """
    costs = list(costs)
    lines = [title if title is not None else f"profile={profile()}  seed offset={seed_offset()}  smoke={smoke()}",
             f"estimates on a {device.name} ({device.flops_per_s / 1e12:.{0 if device.flops_per_s >= 1e12 else 2}f} "
             f"TFLOP/s {device.dtype} "
             f"at {efficiency:.0%} efficiency, {device.memory_bytes / 1e9:.0f} GB):"]
    total_s = 0.0
    peak = 0.0
    for c in costs:
        s = c.seconds(device, efficiency)
        total_s += s
        peak = max(peak, c.peak_bytes)
        lines.append(f"  {c.name:<34s} {c.flops:9.2e} flop  {s:8.2f} s  {c.peak_bytes / 1e9:7.3f} GB")
    lines.append(f"  {'total':<34s} {'':9s}       {total_s:8.2f} s  {peak / 1e9:7.3f} GB peak")
    if total_s > budget_s or peak > budget_bytes:
        raise ValueError(
            f"the estimate ({total_s:.0f} s, {peak / 1e9:.1f} GB) exceeds the budget "
            f"({budget_s:.0f} s, {budget_bytes / 1e9:.0f} GB on a {device.name}): shrink the sizes."
        )
    return "\n".join(lines)


#: Config fields that count iterations (cut in a smoke run); every other field is a size.
ITERATION_FIELDS = ("steps", "epochs", "iters", "restarts", "every")


def _is_iteration_field(name: str) -> bool:
    return any(name == f or name.endswith("_" + f) or name.startswith(f + "_") for f in ITERATION_FIELDS)


def select(configs: dict):
    r"""The notebook's config for :func:`profile`, with iteration counts cut in a smoke run.

    ``configs`` maps profile names to a ``NamedTuple`` of sizes. In a smoke run
    (``NTKLIB_SMOKE=1``) every integer field named like an iteration count (``steps``,
    ``grid_steps``, ``epochs``, ``pgd_steps``, ``restarts``, ...) goes through :func:`iters`;
    sizes are kept, so the profile's shapes and memory are what runs.

    >>> from typing import NamedTuple
    >>> class C(NamedTuple):
    ...     n: int
    ...     steps: int
    >>> import os; os.environ["NTKLIB_PROFILE"] = "small"; os.environ["NTKLIB_SMOKE"] = "1"
    >>> select({"small": C(64, 1000)})
    C(n=64, steps=3)
    >>> os.environ["NTKLIB_SMOKE"] = "0"
    """
    if not isinstance(configs, dict) or not configs:
        raise ValueError(f"select: configs must be a non-empty dict of profile name -> Config, "
                         f"e.g. {{'small': Config(...)}}, got {configs!r}.")
    name = profile()
    if name not in configs:
        raise ValueError(
            f"this notebook has no {name!r} profile (it has {', '.join(configs)}); "
            f"set {ENV_VAR} to one of those."
        )
    cfg = configs[name]
    if not smoke() or not hasattr(cfg, "_replace"):
        return cfg
    cut = {f: iters(v) for f, v in cfg._asdict().items()
           if _is_iteration_field(f) and isinstance(v, int) and not isinstance(v, bool)}
    return cfg._replace(**cut)
