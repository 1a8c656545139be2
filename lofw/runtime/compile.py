"""How lofw compiles: the XLA options of its programs and the persistent compile cache."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
from jax.experimental.compilation_cache import compilation_cache


def compiler_options() -> dict[str, Any] | None:
    """XLA options of the meta-step and of evaluation: on CPU, LLVM optimisation level 1.

    The default level spends most of the compile time optimising the learned
    optimizer's many small per-tensor fusions: level 1 compiles the meta-step
    in about 60% of the time for a few percent slower step
    (``benchmarks/meta_step.py``; numbers in docs/performance.md). The option
    is fixed, so a resumed run compiles the same program.
    """
    if jax.default_backend() == "cpu":
        return {"xla_backend_optimization_level": 1}
    return None


@functools.cache
def compiled(fn: Callable) -> Callable:
    """``eqx.filter_jit(fn)`` with :func:`compiler_options`, built once per function.

    Built on first use, not at import: asking for the backend initialises it.
    """
    return eqx.filter_jit(fn, compiler_options=compiler_options())


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
