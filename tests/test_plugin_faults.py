"""A broken third-party plugin is located, listed by ``lofw plugins`` and can be left out by name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lofw.entry_points import DISABLE_AUTOLOAD_ENV, DISABLE_PLUGINS_ENV

MODULES = {
    "raises_at_import": "raise RuntimeError('boom at import')\n",
    "wrong_signature": textwrap.dedent("""
        import lofw

        @lofw.hookimpl
        def lofw_register_components(reg):  # the hook's argument is `register`
            pass
    """),
    "raises_in_registration": textwrap.dedent("""
        import lofw

        @lofw.hookimpl
        def lofw_register_components(register):
            raise KeyError("no such thing")
    """),
}
ERRORS = {
    "raises_at_import": "RuntimeError: boom at import",
    "wrong_signature": "PluginValidationError",
    "raises_in_registration": "its lofw_register_components raised KeyError: 'no such thing'",
}


def _install(tmp_path, module: str):
    """A distribution `bad-plugin` on a path of its own, whose `lofw` entry point `bad` is ``module``."""
    (tmp_path / f"{module}.py").write_text(MODULES[module])
    info = tmp_path / "bad_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lofw]\nbad = {module}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop(DISABLE_AUTOLOAD_ENV, None)  # (the test session loads only the built-ins)
    return env


def _lofw(env, *argv):
    return subprocess.run([sys.executable, "-m", "lofw.cli.main", *argv], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("module", list(MODULES))
def test_a_broken_plugin_is_named_with_its_distribution_and_error_and_can_be_disabled(module, tmp_path):
    env = _install(tmp_path, module)
    done = _lofw(env, "ablate", "quickstart", "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "plugin 'bad' (distribution 'bad-plugin') is broken" in done.stderr and ERRORS[module] in done.stderr
    assert f"{DISABLE_PLUGINS_ENV}=bad" in done.stderr

    listed = _lofw(env, "plugins")
    assert listed.returncode == 0 and "adafactor" in listed.stdout, listed.stderr
    broken = listed.stdout.split("BROKEN PLUGINS")[1]
    assert "bad" in broken and "bad-plugin" in broken and ERRORS[module] in broken

    without = _lofw({**env, DISABLE_PLUGINS_ENV: "bad"}, "ablate", "quickstart", "--dry-run")
    assert without.returncode == 0 and "star_wd0.1" in without.stdout, without.stderr
