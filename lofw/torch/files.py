"""Where the portable files of named optimizers are (JAX-free)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lofw.errors import ConfigError, choices

#: The portable file in each shipped optimizer's folder (beside params.eqx and card.json).
PORTABLE = "optimizer.lofw"


def shipped_folder() -> Path | None:
    """``lofw_plugins/pretrained``, found without importing ``lofw_plugins``."""
    spec = importlib.util.find_spec("lofw_plugins")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained"


def shipped() -> dict[str, Path]:
    """``{name: portable file}`` of the optimizers lofw ships."""
    folder = shipped_folder()
    if folder is None:
        return {}
    return {f.parent.name: f for f in sorted(folder.glob(f"*/{PORTABLE}"))}


def resolve_file(optimizer: str | Path) -> Path:
    """A portable file's path: ``optimizer`` itself if it is a file, else a shipped optimizer of that name."""
    path = Path(optimizer)
    if path.is_file():
        return path
    found = shipped()
    if str(optimizer) in found:
        return found[str(optimizer)]
    raise ConfigError(f"{optimizer!s}: neither a portable file nor a shipped optimizer; shipped: {choices(found)} "
                      "(write a file of your own with `lofw pretrained export SOURCE --format torch --out FILE`)")
