"""Metrics loggers: the TensorBoard logger writes events that TensorBoard reads back."""

from __future__ import annotations

import json

import pytest

from lofw.meta.checkpoint import METRICS


def test_tensorboard_events_read_back(run4):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run4 / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"meta_loss", "grad_norm", "nan_grads", "resets", "theta_norm"} <= tags
    meta = [(e.step, e.value) for e in acc.Scalars("meta_loss")]
    lines = [json.loads(x) for x in (run4 / METRICS).read_text().splitlines()]
    assert [s for s, _ in meta] == [1, 2, 3, 4]
    assert [v for _, v in meta] == pytest.approx([m["meta_loss"] for m in lines], rel=1e-6)
