"""lofw's built-in components, registered through the ``lofw`` entry point
like any third-party plugin.

Importing this package is cheap and imports no JAX: the component modules
are imported when lofw builds its component table (:mod:`lofw_plugins.components`),
so that :mod:`lofw.torch` can load ``lofw_plugins.torch`` (entry-point group
``lofw.torch``) without JAX.
"""

from __future__ import annotations

import lofw
from lofw_plugins.pretrained import lofw_register_pretrained  # noqa: F401 - the hook of the shipped optimizers


@lofw.hookimpl
def lofw_register_components(register):
    from lofw_plugins.components import COMPONENTS, SCHEDULES  # imports JAX: only when the table is built

    for name, cls in (*COMPONENTS.items(), *SCHEDULES.items()):
        register(name, cls)
