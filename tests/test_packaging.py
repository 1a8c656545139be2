"""pyproject.toml lists every package directory (plugins/ maps to lofw_plugins)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages_on_disk():
    found = set()
    for top, name in (("lofw", "lofw"), ("plugins", "lofw_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join((name, *rel.parts)))
    return found


def test_every_package_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() <= listed, f"add to pyproject.toml packages: {sorted(_packages_on_disk() - listed)}"


def test_console_script_and_entry_point():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["scripts"]["lofw"] == "lofw.cli.main:main"
    assert config["project"]["entry-points"]["lofw"]["builtins"] == "lofw_plugins"
