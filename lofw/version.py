"""The version of lofw."""

__version__ = "0.1.0"
