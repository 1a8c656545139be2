"""Horizon schedules: the length of each meta-training episode."""

from lofw_plugins.schedule.schedules import Constant, LogUniform

__all__ = ["Constant", "LogUniform"]
