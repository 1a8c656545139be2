"""The ``tensorboard`` logger: standard TensorBoard event files under the run folder.

Enabled with ``--log tensorboard`` (``pip install 'lofw[tensorboard]'``).
Every ``lofw_log_metrics`` call becomes one event of scalar summaries in
``<run_dir>/tensorboard/``: per meta-step ``meta_loss``, ``grad_norm``,
``nan_grads``, ``resets``, ``theta_norm``; per inner step of an evaluation
``eval/<optimizer>/loss``. View with ``tensorboard --logdir runs``.

Written with TensorBoard's own event writer (no TensorFlow needed).
"""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

import lofw

#: Sub-folder of the run folder that holds the event files.
FOLDER = "tensorboard"

_writers: dict[str, EventFileWriter] = {}

def _writer(run_dir: str) -> EventFileWriter:
    if run_dir not in _writers:
        _writers[run_dir] = EventFileWriter(str(Path(run_dir) / FOLDER), max_queue_size=1000, flush_secs=10)
    return _writers[run_dir]

@lofw.hookimpl
def lofw_log_metrics(run_dir: str, step: int, metrics: dict) -> None:
    if not run_dir:  # an in-memory run has no folder to write to
        return
    values = [
        Summary.Value(tag=k, simple_value=float(v))
        for k, v in metrics.items()
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if values:
        _writer(run_dir).add_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=values)))

def close() -> None:
    """Flush and close every event file (called when the run ends)."""
    while _writers:
        _writers.popitem()[1].close()

