"""lofw's pretrained optimizers: one folder per optimizer (``params.eqx`` +
``card.json``, written by ``lofw pretrained export``), registered through the
``lofw_register_pretrained`` hook like a third-party package's would be."""

from __future__ import annotations

from pathlib import Path

import lofw

HERE = Path(__file__).resolve().parent


@lofw.hookimpl
def lofw_register_pretrained(register):
    for card in sorted(HERE.glob("*/card.json")):
        register(card.parent.name, str(card.parent))
