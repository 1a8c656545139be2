"""An evaluation names a learned optimizer that diverged, stayed at chance or is far behind its baseline."""

from __future__ import annotations

import math

import pytest

from lofw.cli.main import main as cli
from lofw.evaluation.verdicts import FAR_BEHIND, verdicts

CHANCE = math.log(10)


def _entry(final, mean, diverged=(False, False)):
    return {"final_loss_mean": final, "mean_loss": mean, "diverged": list(diverged), "n_diverged": sum(diverged)}


@pytest.mark.parametrize("learned, flag", [
    (_entry(0.05, 0.2), None),
    (_entry(0.05, 0.1 * FAR_BEHIND * 1.01), "2.02x adam's mean loss"),
    (_entry(CHANCE, 2.4), "at or above chance"),
    (_entry(0.995 * CHANCE, 0.2), "at or above chance"),  # stuck at a uniform guess
    (_entry(None, 3.45, diverged=(True, True)), "diverged"),
])
def test_each_verdict_against_a_hand_made_summary(learned, flag):
    summary = {"chance_loss": CHANCE, "optimizers": {"learned": learned, "adam": _entry(0.01, 0.1),
                                                    "adam@horizon": _entry(0.02, 0.3)}}
    flags, sentences = verdicts(summary)
    assert flags.get("learned") == flag and len(sentences) == (flag is not None)


def test_without_a_chance_loss_or_baseline_only_divergence_is_flagged():
    flags, _ = verdicts({"chance_loss": None, "optimizers": {"learned": _entry(50.0, 50.0)}})
    assert flags == {}


def test_the_evaluate_command_prints_the_flag_and_a_warning(tmp_path, capsys):
    # 5 meta-steps at an outer learning rate of 10: every inner run of the evaluation diverges
    run = tmp_path / "run"
    assert cli(["meta-train", "star", "--task", "digits_mlp", "--horizon", "20", "--truncation", "10",
                "--particles", "2", "--lr", "10", "--steps", "5", "--no-progress", "--out", str(run)]) == 0
    assert cli(["evaluate", str(run), "--steps", "50", "--seeds", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[2].endswith("diverged") and "warning: learned diverged on every seed (2/2)" in err
