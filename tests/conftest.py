import os
import sys
from pathlib import Path

# Hermetic by default: only lofw's own plugins, whatever else is installed.
os.environ.setdefault("LOFW_DISABLE_PLUGIN_AUTOLOAD", "1")
sys.path.insert(0, str(Path(__file__).parent))

import jax  # noqa: E402
import pytest  # noqa: E402

# No persistent compile cache inside the test process. The CLI commands the
# tests call turn it on (lofw.runtime.compile.enable_compile_cache), and with
# it on, the full suite segfaulted twice (2026-12-07) inside JAX 0.10.2's
# cache write (compilation_cache.put_executable_and_time), in
# tests/test_torch_parity.py; that file passes alone. Subprocess tests
# (test_grid_resume, test_wheel) still exercise the cache with their own
# JAX_COMPILATION_CACHE_DIR.
jax.config.update("jax_enable_compilation_cache", False)


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    With the cache off the full suite still segfaulted, now inside XLA's
    compile (backend_compile_and_load), again late in the suite in
    test_torch_parity. The working guess, not proven: the one long process
    accumulates thousands of compiled CPU executables, each mapping memory,
    until a new compile fails near the kernel's limit of memory maps
    (vm.max_map_count, 65530 here). Releasing them per module bounds that.
    """
    yield
    jax.clear_caches()


@pytest.fixture(scope="session")
def run4(tmp_path_factory):
    """A finished 4-meta-step run folder (checkpoints at 2 and 4, TensorBoard events); copy it before changing it."""
    from run_helpers import META_TRAIN_ARGS

    from lofw.cli.main import main as cli  # after the environment above is set

    out = tmp_path_factory.mktemp("safe") / "run"
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "4", "--out", str(out), "--log", "tensorboard"]) == 0
    return out
