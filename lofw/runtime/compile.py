"""How lofw compiles: the XLA options of its programs and the persistent compile cache."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
from jax.experimental.compilation_cache import compilation_cache

#: Set to ``1`` to opt lofw's own CPU programs into XLA's fast-math (see :func:`compiler_options`).
FAST_MATH_ENV = "LOFW_FAST_MATH"


def fast_math() -> bool:
    """Whether :data:`FAST_MATH_ENV` opts lofw's CPU programs into XLA's fast-math."""
    return os.environ.get(FAST_MATH_ENV, "").strip().lower() in ("1", "true", "yes")


def compiler_options() -> dict[str, Any] | None:
    """XLA options of the meta-step and of evaluation: on CPU, LLVM optimisation level 1.

    The default level spends most of the compile time optimising the learned
    optimizer's many small per-tensor fusions: level 1 compiles the meta-step
    in about 60% of the time for a few percent slower step
    (``benchmarks/meta_step.py``; numbers in docs/performance.md). The option
    is fixed, so a resumed run compiles the same program.

    Opt-in: with ``LOFW_FAST_MATH=1`` the CPU programs also use XLA's
    fast-math (multiply-adds contracted into FMAs, sums reassociated; NaN and
    infinity are still honoured, so divergence is still detected). It makes
    a learned optimizer's step ~20% faster on CPU and changes results in the
    last bits (measured in docs/performance.md): a run resumed with the other
    setting goes on with other rounding, as on another CPU. Off by default.
    """
    if jax.default_backend() == "cpu":
        options: dict[str, Any] = {"xla_backend_optimization_level": 1}
        if fast_math():
            options["xla_cpu_enable_fast_math"] = True
        return options
    return None


def compiled(fn: Callable) -> Callable:
    """``eqx.filter_jit(fn)`` with :func:`compiler_options`, built once per function and options.

    Built on first use, not at import: asking for the backend initialises it.
    """
    options = compiler_options()
    return _compiled(fn, None if options is None else tuple(sorted(options.items())))


@functools.cache
def _compiled(fn: Callable, options: tuple[tuple[str, Any], ...] | None) -> Callable:
    return eqx.filter_jit(fn, compiler_options=None if options is None else dict(options))


def enable_compile_cache(out: Path) -> None:
    """Persist compiled programs in ``out/.jax_cache``, across cells, worker processes and reruns.

    Cells that differ only by seed or by a hyperparameter that is data (not
    shape) compile the same programs; with the cache only the first pays. A
    cache directory chosen by the user (``JAX_COMPILATION_CACHE_DIR``) wins.
    """
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str((Path(out) / ".jax_cache").resolve())
    compilation_cache.reset_cache()  # in case something compiled before the directory was known
    compilation_cache.set_cache_dir(os.environ["JAX_COMPILATION_CACHE_DIR"])
