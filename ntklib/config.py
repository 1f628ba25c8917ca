"""Size profiles: ``small`` for CPUs and CI, ``full`` for a GPU.

Every chapter notebook chooses its sizes with :func:`profile`. The maths never
branches on the device; only the sizes do.
"""

from __future__ import annotations

import os

import jax

__all__ = ["PROFILES", "profile"]

PROFILES = ("small", "full")
ENV_VAR = "NTKLIB_PROFILE"


def profile() -> str:
    """Return the size profile, ``"small"`` or ``"full"``.

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
