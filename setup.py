"""Build step: ship the top-level ``registry.yaml`` and ``ablations/`` inside
the package, as ``lofw/_data/`` (everything else is in pyproject.toml).

The top-level files stay the source of truth; an editable install reads them
in place, a wheel carries this copy (``lofw.registry.default_registry_path``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("registry.yaml", "ablations")


class BuildPyWithRegistry(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "lofw" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithRegistry})
