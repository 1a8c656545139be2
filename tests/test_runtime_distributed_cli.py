"""``lofw meta-train --devices/--distributed`` and ``lofw evaluate --devices``
end to end: sharded runs write the metrics of an unsharded run (to float
tolerance), resume across device counts and processes, and only process 0
writes files.

Every run is a ``python -m lofw.cli.main`` subprocess with forced host
devices (``XLA_FLAGS``), on the NQM with the dense preconditioner (fast to
compile), PES with 8 particles, horizon 10, truncation 5.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from forced_devices import forced_devices_env

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
recipe: {optimizer: dense_preconditioner, dim: 2, alpha: 0.1}
task: nqm
horizon: 10
meta_steps: 4
seed: 3
checkpoint_every: 2
estimator: {name: pes, truncation: 5, particles: 8, std: 0.1}
"""


def _cli(*argv: str, host_devices: int = 4) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lofw.cli.main", *argv], env=forced_devices_env(host_devices), cwd=ROOT,
        capture_output=True, text=True, timeout=300,
    )


def _meta_train(config: Path, out: Path, *flags: str, host_devices: int = 4) -> None:
    proc = _cli("meta-train", "--config", str(config), "--out", str(out), "--no-progress", "--no-compile-cache",
                *flags, host_devices=host_devices)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _same_metrics(a: list[dict], b: list[dict]) -> None:
    assert [m["step"] for m in a] == [m["step"] for m in b]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], int):
                assert x[k] == y[k], (k, x, y)
            else:
                np.testing.assert_allclose(x[k], y[k], rtol=1e-5, err_msg=k)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    (root / "cfg.yaml").write_text(CONFIG)
    _meta_train(root / "cfg.yaml", root / "reference")  # no mesh: one device
    return {"root": root, "config": root / "cfg.yaml", "reference": root / "reference"}


def test_sharded_run_resumed_on_other_devices_matches_reference(files):
    out = files["root"] / "sharded"
    _meta_train(files["config"], out, "--devices", "4", "--stop-after", "2")
    _meta_train(files["config"], out, "--devices", "2")  # resumed on another mesh
    reference = _metrics(files["reference"])
    assert len(reference) == 4 and reference[0]["grad_norm"] > 0
    _same_metrics(reference, _metrics(out))
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    # the device count is not part of the run's config
    assert (out / "config.json").read_text() == (files["reference"] / "config.json").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(config: Path, outs: list[Path], *flags: str) -> None:
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lofw.cli.main", "meta-train", "--config", str(config), "--out", str(out),
             "--no-progress", "--no-compile-cache", "--distributed", "--coordinator", address,
             "--num-processes", "2", "--process-id", str(i), *flags],
            env=forced_devices_env(2), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, out in enumerate(outs)
    ]
    try:
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errors):
        assert p.returncode == 0, err[-3000:]


def test_two_processes_write_once_and_resume_from_process_zero(files):
    """Process 1 gets its own (empty) folder: it must write nothing there and,
    on resume, continue from process 0's checkpoint (broadcast), not restart."""
    outs = [files["root"] / "p0", files["root"] / "p1"]
    _two_processes(files["config"], outs, "--stop-after", "2")
    assert not outs[1].exists() or not any(outs[1].iterdir())
    assert len(_metrics(outs[0])) == 2
    _two_processes(files["config"], outs)
    assert not outs[1].exists() or not any(outs[1].iterdir())
    _same_metrics(_metrics(files["reference"]), _metrics(outs[0]))


def test_evaluate_seeds_split_over_devices(files):
    """3 seeds over 2 devices (padded to 4): the same curves as one device."""
    outs = []
    for name, flags in (("one", ()), ("two", ("--devices", "2"))):
        out = files["root"] / f"eval-{name}"
        proc = _cli("evaluate", str(files["reference"]), "--steps", "20", "--seeds", "3", "--baseline", "adam",
                    "--out", str(out), *flags, host_devices=2)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(np.load(out / "curves.npz"))
    for name in ("learned", "adam"):
        assert outs[0][name].shape == outs[1][name].shape == (3, 20)
        np.testing.assert_allclose(outs[0][name], outs[1][name], rtol=1e-5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--particles", "6", "--devices", "4"], "particles: 6 particles do not divide evenly across 4 devices"),
        (["--devices", "5"], "asked for 5 devices, but 4 are available"),
        (["--process-id", "1"], "--process-id: only meaningful with --distributed"),
    ],
)
def test_bad_scale_flags_exit_2_writing_nothing(files, flags, message):
    out = files["root"] / "bad"
    proc = _cli("meta-train", "--config", str(files["config"]), "--out", str(out), "--no-progress",
                "--no-compile-cache", *flags)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists()
