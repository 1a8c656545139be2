"""The wheel works outside the checkout: `pip wheel .` builds it,
it is installed (without dependencies: they come from this test's
environment) into a fresh virtual environment, and from a folder outside
the checkout the commands find the registry, the grids and the plugins that
ship inside the package, and a tiny real meta-training run completes."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("lofw", "plugins", "ablations", "registry.yaml", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(command, cwd, env, check=True):
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # build from a copy: nothing is written into the checkout
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_data"))
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("LOFW_REGISTRY", "PYTHONPATH", "JAX_COMPILATION_CACHE_DIR")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(src)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("lofw-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp_path, env).stdout.strip())
    # the dependencies: this environment's site-packages, after the venv's own
    parents = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"]} if Path(p).is_dir()]
    (purelib / "zz_test_dependencies.pth").write_text("\n".join(parents) + "\n")
    # pip of this environment, installing into the venv's interpreter (its console script included)
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
         tmp_path, env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}
    where = _run([str(python), "-c", "import lofw, lofw_plugins; print(lofw.__file__); print(lofw_plugins.__file__); "
                  "print(lofw.count_meta_parameters(lofw.build('star')))"], work, env).stdout.split()
    assert all(str(purelib) in w for w in where[:2]) and where[2] == "203"
    out = _run(["lofw", "registry"], work, env).stdout
    assert str(purelib / "lofw" / "_data" / "registry.yaml") in out and "quickstart" in out
    assert "adafactor" in _run(["lofw", "plugins"], work, env).stdout
    dry = _run(["lofw", "ablate", "quickstart", "--dry-run"], work, env).stdout
    assert "grid quickstart" in dry and "nothing was run or written" in dry
    _run(["lofw", "pretrained"], work, env)
    _run(["lofw", "meta-train", "star", "--task", "digits_mlp", "--steps", "1", "--horizon", "10", "--truncation", "10",
          "--particles", "2", "--out", "run", "--no-progress"], work, env)
    assert (work / "run" / "checkpoint.eqx").is_file()
    bad = _run(["lofw", "registry"], work, {**env, "LOFW_REGISTRY": str(tmp_path / "missing.yaml")}, check=False)
    assert bad.returncode == 2 and "missing.yaml: registry file not found" in bad.stderr
