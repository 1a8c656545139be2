"""The one reader of the files people hand lofw: run configs, grids, the registry, model cards.

Every refusal is a :class:`~lofw.errors.ConfigError` naming the file and
where in it, so the command line prints one line and exits with status 2:

- text that is not UTF-8 (the byte offset and the byte);
- a file larger than :data:`MAX_BYTES` (such files are hand-written and
  small; the shipped registry is about 10 kB);
- YAML nested deeper than :data:`MAX_DEPTH` levels, an alias that refers to
  itself, or aliases that expand to more than :data:`MAX_NODES` nodes (a few
  hundred bytes of nested aliases, the "billion laughs" shape, would
  otherwise expand to hundreds of millions of nodes once validation walks
  them);
- JSON nested too deeply for Python's parser, or not JSON.

Files lofw writes for itself (statuses, metrics lines, checkpoints) are read
by :mod:`lofw.runtime.disk`, which treats a missing or torn file as "not
there yet" for resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lofw.errors import ConfigError

#: Largest file read (bytes).
MAX_BYTES = 4 * 2**20
#: Deepest nesting of YAML mappings and lists.
MAX_DEPTH = 64
#: Most YAML nodes once every alias is expanded.
MAX_NODES = 100_000


def read_text(path: str | Path, max_bytes: int | None = None) -> str:
    """The UTF-8 text of ``path``; ConfigError when unreadable, larger than ``max_bytes``
    (default :data:`MAX_BYTES`) or not UTF-8."""
    path = Path(path)
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{path}: {size} bytes, more than the {max_bytes} a lofw input file may have; "
                              "is this the right file?")
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r}); "
                          "save the file as UTF-8") from None


class _Refused(Exception):
    """A bound of the YAML reader was passed (turned into a located ConfigError)."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with a bound on nesting depth."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases refer to themselves or expand past MAX_NODES."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            mark = node.start_mark
            raise _Refused(f"line {mark.line + 1}: an alias refers to the structure that contains it")
        active.add(key)
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        active.discard(key)
        if total > MAX_NODES:
            raise _Refused(f"its aliases expand to more than {MAX_NODES} values; write the values out instead")
        sizes[key] = total
        return total

    size(root)


def _control_character(path: str | Path, e: yaml.reader.ReaderError) -> ConfigError:
    return ConfigError(f"{path}: character {e.position}: U+{e.character:04X} is not allowed in YAML "
                       "(a control character: is this a binary file?)")


def read_yaml(path: str | Path) -> Any:
    """Read a UTF-8 YAML file with the safe loader, within the bounds above.

    Errors name the file and the line (or byte).
    """
    text = read_text(path)
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as e:
        raise _control_character(path, e) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except _Refused as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.reader.ReaderError as e:  # (found while scanning a later part of the text)
        raise _control_character(path, e) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path}:{line}: YAML syntax error: {problem}") from None
    finally:
        loader.dispose()


def read_json_file(path: str | Path) -> Any:
    """Read a UTF-8 JSON file within the bounds above; ConfigError naming the file otherwise."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply") from None
