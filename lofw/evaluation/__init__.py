"""Evaluation: sources, the evaluation kernel, baselines, ``evaluate``, ``generalize``, stability and plots.

Use it through the face: :func:`lofw.evaluate`, :func:`lofw.resolve_source`, :class:`lofw.Source`.
"""
