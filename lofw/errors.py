"""Errors meant for people: what went wrong, where, and how to fix it."""

from __future__ import annotations


class LofwError(Exception):
    """Base class of lofw's user-facing errors.

    The command line prints the message alone (no traceback) and exits with
    status 2.
    """


class ConfigError(LofwError, ValueError):
    """A recipe, registry or grid file is wrong: bad name, key, type or value."""


class RunFailed(LofwError, RuntimeError):
    """A run started and then failed in a way more steps cannot mend (non-finite
    meta-parameters). The command line prints the message and exits with
    status 3, not 2: the input was valid, the run was not."""


class WriteFailed(RunFailed, OSError):
    """A file could not be written (a full disk, a quota, a folder gone): the
    message names the file and the operating system's reason; the file it
    would have replaced is intact. Exit status 3."""


class PluginError(LofwError, RuntimeError):
    """A plugin registered something invalid (duplicate name, no interface)."""


def located(error: ConfigError, where: str) -> ConfigError:
    """``error`` with each line that does not name ``where`` yet prefixed by it."""
    lines = [line if line.startswith(where) else f"{where}: {line}" for line in str(error).splitlines()]
    return ConfigError("\n".join(lines))


def choices(names) -> str:
    """Format valid choices for an error message."""
    names = sorted(names)
    return ", ".join(repr(n) for n in names) if names else "(none registered)"
