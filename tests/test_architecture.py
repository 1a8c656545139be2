"""The house rules of docs/architecture.md, read from the code's own imports (AST, nothing is run)."""

from __future__ import annotations

import ast
from pathlib import Path

import lofw
import lofw.interfaces.kinds

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"lofw": ROOT / "lofw", "lofw_plugins": ROOT / "plugins"}


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in PACKAGES[package].rglob("*.py"):
        parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((package, *parts))] = path
    return found


def _imports(path: Path, name: str) -> list[tuple[str, list[str], bool]]:
    """(module, names, at the top level) of every lofw / lofw_plugins import of the file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    out.append((alias.name, [], id(node) in top))
            continue
        else:
            continue
        if module.split(".")[0] in PACKAGES:
            out.append((module, [a.name for a in node.names], id(node) in top))
    return out


def test_no_face_name_shadows_a_module():
    modules = _modules("lofw")
    clashes = [n for n in lofw.__all__ if f"lofw.{n}" in modules]
    assert not clashes, f"these face names hide a module of the same name: {clashes}"


def test_no_import_circle_among_lofw_modules():
    """Imports inside functions count too: a circle hidden in a function is still a circle."""
    modules = _modules("lofw")
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, names, at_top in _imports(path, name):
            if not module.startswith("lofw."):
                continue
            for target in [module, *(f"{module}.{n}" for n in names)]:
                if target in modules and target != name and target != "lofw":
                    targets.add(target)
        graph[name] = targets
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_no_module_imports_another_modules_private_name():
    bad = []
    for package in PACKAGES:
        for name, path in _modules(package).items():
            for module, names, _ in _imports(path, name):
                bad += [f"{path.relative_to(ROOT)}: {module}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_built_in_plugins_import_lofw_only_from_the_face():
    """The faces: ``lofw``, and ``lofw.torch`` for the PyTorch implementations (plus ``lofw.nqm``'s maths)."""
    bad = []
    for name, path in _modules("lofw_plugins").items():
        for module, _, _ in _imports(path, name):
            if module.startswith("lofw.") and module not in ("lofw.nqm", "lofw.torch"):
                bad.append(f"{path.relative_to(ROOT)}: {module}")
    assert not bad, f"import these from `lofw` (the face) instead: {bad}"


def test_the_plugin_folders_mirror_the_component_kinds():
    kinds = set(lofw.interfaces.kinds.INTERFACES)
    folders = {p.name for p in PACKAGES["lofw_plugins"].iterdir() if (p / "__init__.py").is_file()}
    assert kinds <= folders, f"plugins/ has no folder for kinds {sorted(kinds - folders)}"
    assert {p.stem for p in (ROOT / "lofw" / "interfaces").glob("*.py")} >= kinds


#: The modules lofw.torch runs on: no JAX, and no lofw module that imports it.
JAX_FREE = {"lofw", "lofw.version", "lofw.errors", "lofw.reading", "lofw.hooks", "lofw.entry_points", "lofw.portable",
            "lofw.slots"}
JAX_LIBRARIES = {"jax", "jaxlib", "equinox", "optax", "jaxtyping"}


def _third_party(path: Path) -> set[str]:
    """Top-level names of everything the file imports at its top level."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_pytorch_side_imports_no_jax():
    """lofw.torch, lofw_plugins.torch and the lofw modules they use import neither JAX nor a module that does.

    (``lofw/__init__.py`` loads its names lazily, so importing ``lofw`` is JAX-free; the plugins' package
    ``lofw_plugins`` likewise.) tests/test_torch_optimizer.py checks the same at run time.
    """
    modules = {**_modules("lofw"), **_modules("lofw_plugins")}
    checked = {n: p for n, p in modules.items()
               if n in JAX_FREE or n.startswith(("lofw.torch", "lofw_plugins.torch"))
               or n in ("lofw_plugins", "lofw_plugins.pretrained")}
    bad = []
    for name, path in checked.items():
        jax_like = _third_party(path) & JAX_LIBRARIES
        if jax_like:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(jax_like)}")
        for module, names, at_top in _imports(path, name):
            if not at_top:
                continue
            targets = [module] + [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            if not any(t in checked for t in targets):
                bad.append(f"{path.relative_to(ROOT)} imports {module}, which is not JAX-free")
    assert not bad, bad
