"""Populations (lofw.meta.population): members meta-trained as one vmapped
program equal the same runs alone, to float rounding; they resume alone or
together; a member that fails leaves the others going; bad populations are
refused before anything is written.

The runs alone are the reference: ``lofw.meta_train`` of each member's config.
"""

import json

import jax
import numpy as np
import pytest

import lofw
from lofw.errors import ConfigError
from lofw.meta.checkpoint import METRICS, STATUS, load_checkpoint
from lofw.meta.population import meta_train_population, population_key
from lofw.meta.run_writer import RunWriter
from lofw.meta.training import merge_overrides, setup_run
from lofw.registry import load_registry

# star_stable, not star: star's PES estimate at initialisation on this task is
# chaotic in theta (measured: a relative change of 1e-7 in theta moved the
# meta-gradient norm of a seed by 60% within two meta-steps), so float rounding
# alone would leave star's members and runs alone apart; star_stable's agree to
# ~6e-5 relative after 6 meta-steps (even a population of one is not bit for
# bit the run alone: XLA orders a batched reduction differently).
BASE = {
    "recipe": "star_stable",
    "task": "digits_mlp",
    "estimator": {"name": "pes", "truncation": 10, "particles": 4},
    "horizon": 20,
    "meta_steps": 6,
    "checkpoint_every": 2,
}
# three members: other seeds, learning rates and weight decays
MEMBERS = [
    {**BASE, "seed": 0, "outer": {"lr": 1e-2}},
    {**BASE, "seed": 1, "outer": {"lr": 3e-3, "weight_decay": 0.5}},
    {**BASE, "seed": 2, "outer": {"lr": 1e-2, "weight_decay": 0.1}},
]
# float rounding: a vmapped reduction may sum in another order than the run alone
RTOL, ATOL = 1e-4, 1e-6


def assert_same_run(population_result, alone_result):
    assert population_result.step == alone_result.step
    for a, b in zip(jax.tree_util.tree_leaves(population_result.optimizer),
                    jax.tree_util.tree_leaves(alone_result.optimizer)):
        if hasattr(a, "dtype"):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)
    assert len(population_result.metrics) == len(alone_result.metrics)
    for p, q in zip(population_result.metrics, alone_result.metrics):
        assert p.keys() == q.keys()
        for key in p:
            np.testing.assert_allclose(p[key], q[key], rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.fixture(scope="module")
def alone():
    return [lofw.meta_train(config, progress=False) for config in MEMBERS]


def test_population_equals_members_alone(alone):
    together = meta_train_population(MEMBERS, progress=False)
    assert [r.status for r in together] == ["finished"] * 3
    for p, a in zip(together, alone):
        assert_same_run(p, a)
    # the members did differ (the test compares three distinct runs)
    losses = [r.metrics[-1]["meta_loss"] for r in together]
    assert len(set(losses)) == 3


def test_interrupted_population_resumes_alone_and_together(tmp_path, alone):
    outs = [tmp_path / f"m{i}" for i in range(3)]
    stopped = meta_train_population(MEMBERS, outs=outs, progress=False, stop_after=3)
    assert [r.status for r in stopped] == ["stopped"] * 3
    assert json.loads((outs[0] / STATUS).read_text())["step"] == 3
    # member 0 goes on alone to the end; then the population finishes the others
    solo = lofw.meta_train(MEMBERS[0], out=outs[0], progress=False)
    assert solo.status == "finished"
    resumed = meta_train_population(MEMBERS, outs=outs, progress=False)
    for r, a, out in zip(resumed, alone, outs):
        assert r.status == "finished"
        assert_same_run(r, a)
        lines = [json.loads(x) for x in (out / METRICS).read_text().splitlines()]
        assert [x["step"] for x in lines] == list(range(1, 7))


def test_run_alone_joins_a_population_and_members_end_at_their_own_meta_steps(tmp_path, alone):
    outs = [tmp_path / "a", tmp_path / "b"]
    lofw.meta_train(MEMBERS[0], out=outs[0], progress=False, stop_after=4)
    shorter = {**MEMBERS[1], "meta_steps": 3}
    results = meta_train_population([MEMBERS[0], shorter], outs=outs, progress=False)
    assert [r.step for r in results] == [6, 3]
    assert_same_run(results[0], alone[0])
    np.testing.assert_allclose([m["meta_loss"] for m in results[1].metrics],
                               [m["meta_loss"] for m in alone[1].metrics[:3]], rtol=RTOL)


def test_a_failing_member_stops_alone(tmp_path, alone):
    # an outer learning rate of 1e38 sends theta past float32's range in one step
    doomed = {**BASE, "seed": 5, "outer": {"lr": 1e38}}
    with pytest.raises(lofw.RunFailed):
        lofw.meta_train(doomed, progress=False)
    outs = [tmp_path / "ok", tmp_path / "doomed"]
    results = meta_train_population([MEMBERS[0], doomed], outs=outs, progress=False)
    assert results[0].status == "finished"
    assert_same_run(results[0], alone[0])
    assert results[1].status == "failed" and "non-finite" in results[1].warning
    assert results[1].step == 0
    status = json.loads((outs[1] / STATUS).read_text())
    assert status["status"] == "failed" and status["step"] == 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(results[1].optimizer)
               if hasattr(x, "dtype"))


def _raise_in_member(monkeypatch, folder, step, error):
    """Make RunWriter.record raise ``error`` for the member whose run folder is ``folder`` at ``step``."""
    record = RunWriter.record

    def patched(self, line):
        if self.run_dir == folder and line["step"] == step:
            raise error
        return record(self, line)

    monkeypatch.setattr(RunWriter, "record", patched)


def test_a_member_failing_mid_run_keeps_its_last_good_step_and_the_others_go_on(tmp_path, monkeypatch, alone):
    outs = [tmp_path / "a", tmp_path / "b"]
    _raise_in_member(monkeypatch, outs[1], 5, lofw.RunFailed("meta-step 5: non-finite (injected)"))
    results = meta_train_population(MEMBERS[:2], outs=outs, progress=False)
    assert results[0].status == "finished" and results[1].status == "failed"
    assert_same_run(results[0], alone[0])
    # member 1 stopped at step 4: its lines, checkpoint and status say so
    assert [x["step"] for x in results[1].metrics] == [1, 2, 3, 4]
    assert [json.loads(x)["step"] for x in (outs[1] / METRICS).read_text().splitlines()] == [1, 2, 3, 4]
    assert json.loads((outs[1] / STATUS).read_text())["status"] == "failed"
    state, _ = load_checkpoint(outs[1], setup_run(merge_overrides(MEMBERS[1], {}), load_registry()).initial_state)
    assert int(state.step) == 4
    np.testing.assert_allclose([x["meta_loss"] for x in results[1].metrics],
                               [x["meta_loss"] for x in alone[1].metrics[:4]], rtol=RTOL)


def test_an_interrupted_population_checkpoints_every_member_and_resumes(tmp_path, monkeypatch, alone):
    outs = [tmp_path / "a", tmp_path / "b"]
    shorter = {**MEMBERS[1], "meta_steps": 2}  # finished before the interrupt: it stays finished
    _raise_in_member(monkeypatch, outs[0], 4, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        meta_train_population([MEMBERS[0], shorter], outs=outs, progress=False)
    assert json.loads((outs[0] / STATUS).read_text()) | {"fingerprint": None} == {
        "status": "interrupted", "step": 3, "meta_steps": 6, "fingerprint": None}
    assert json.loads((outs[1] / STATUS).read_text())["status"] == "finished"
    monkeypatch.undo()
    resumed = meta_train_population([MEMBERS[0], shorter], outs=outs, progress=False)
    assert_same_run(resumed[0], alone[0])
    assert resumed[1].step == 2


def test_population_key_ignores_only_member_fields():
    a = merge_overrides(MEMBERS[0], {})
    assert population_key(a) == population_key(merge_overrides(MEMBERS[1], {}))
    assert population_key(a) == population_key(merge_overrides({**MEMBERS[0], "meta_steps": 99}, {}))
    for change in ({"recipe": "star"}, {"horizon": 40}, {"estimator": {"name": "pes", "truncation": 10,
                                                                          "particles": 8}},
                   {"outer": {"lr": 1e-2, "clip": 0.5}}):
        assert population_key(a) != population_key(merge_overrides({**MEMBERS[0], **change}, {}))


@pytest.mark.parametrize("members, outs, message", [
    ([], None, "no members"),
    ([MEMBERS[0], {**MEMBERS[1], "recipe": "star"}], None, "member 1 differs from member 0 in recipe"),
    ([MEMBERS[0], {**MEMBERS[1], "horizon": 40}], None, "in horizon"),
    ([{**BASE, "task": {"mixture": ["digits_mlp", "quadratic_family"]}}], None, "mixture"),
    ([MEMBERS[0], MEMBERS[1]], ["same", "same"], "one run folder"),
    ([MEMBERS[0], MEMBERS[1]], ["one"], "2 configs but 1 outs"),
])
def test_bad_populations_are_refused_before_anything_is_written(tmp_path, members, outs, message):
    outs = None if outs is None else [tmp_path / o for o in outs]
    with pytest.raises(ConfigError, match=message):
        meta_train_population(members, outs=outs, progress=False)
    assert list(tmp_path.iterdir()) == []
