"""What an evaluation's numbers say in words: a learned optimizer that did not learn is named as such.

:func:`verdicts` reads an evaluation's ``summary.json`` contents and returns,
per optimizer, a short flag for its table row and, for the whole evaluation,
the sentences its last line prints. An optimizer is flagged when

- every seed diverged;
- its mean final loss is at or above :data:`AT_CHANCE` times the task's
  chance loss (the loss of a uniform guess: it did not learn the task);
- its mean loss (over the whole run, normalised) is more than
  :data:`FAR_BEHIND` times that of the best baseline evaluated beside it.
"""

from __future__ import annotations

from typing import Any

#: Fraction of the chance loss from which a final loss counts as "at chance" (a run stuck at a
#: uniform guess ends a hair below ln(classes)).
AT_CHANCE = 0.99
#: Mean-loss ratio to the best baseline above which an optimizer is "far behind".
FAR_BEHIND = 2.0


def verdicts(summary: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """``(flags, sentences)``: a flag per flagged optimizer (name -> text) and one sentence each."""
    entries: dict[str, dict[str, Any]] = summary.get("optimizers", {})
    baselines = {n: e["mean_loss"] for n, e in entries.items() if n != "learned" and e.get("mean_loss") is not None}
    best = min(baselines, key=baselines.get) if baselines else None
    flags: dict[str, str] = {}
    sentences: list[str] = []
    for name, e in entries.items():
        found = _verdict(name, e, summary.get("chance_loss"), best, baselines)
        if found is not None:
            flags[name], sentence = found
            sentences.append(sentence)
    return flags, sentences


def _verdict(name: str, e: dict[str, Any], chance: float | None, best: str | None,
             baselines: dict[str, float]) -> tuple[str, str] | None:
    seeds = len(e.get("diverged", []))
    if seeds and e.get("n_diverged") == seeds:
        return "diverged", f"{name} diverged on every seed ({seeds}/{seeds})"
    final = e.get("final_loss_mean")
    if chance is not None and final is not None and final >= AT_CHANCE * chance:
        return ("at or above chance",
                f"{name} ends at or above the chance loss (final loss {final:.4g}, chance {chance:.4g}): "
                "it did not learn this task")
    if name == "learned" and best is not None and e.get("mean_loss") is not None and baselines[best] > 0:
        ratio = e["mean_loss"] / baselines[best]
        if ratio > FAR_BEHIND:
            return (f"{ratio:.3g}x {best}'s mean loss",
                    f"{name} is far behind {best}: mean loss {e['mean_loss']:.4g}, {ratio:.3g}x its {baselines[best]:.4g}")
    return None
