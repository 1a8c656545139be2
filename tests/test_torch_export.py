"""`lofw pretrained export SOURCE --format torch`: any lofw optimizer to a portable file that lofw.torch loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lofw
import lofw.torch
from lofw.cli.main import main as cli
from lofw.errors import ConfigError
from lofw.evaluation.sources import resolve_source
from lofw.export_portable import portable_parts
from lofw.portable import read_portable
from lofw_plugins.optimizer.nqm_dense import DensePreconditioner


def test_a_meta_trained_run_exports_and_steps_in_torch(run4, tmp_path, capsys):
    out = tmp_path / "run.lofw"
    assert cli(["pretrained", "export", str(run4), "--format", "torch", "--out", str(out)]) == 0
    assert "lofw.torch.load(" in capsys.readouterr().out
    manifest, arrays = read_portable(out)
    spec, expected = portable_parts(resolve_source(str(run4)).optimizer)
    assert manifest["optimizer"] == spec and all(np.array_equal(arrays[k], expected[k]) for k in expected)
    assert manifest["card"]["kind"] == "run" and manifest["card"]["horizon"] is not None
    model = torch.nn.Linear(8, 2)
    opt = lofw.torch.load(out, model.parameters())
    before = model.weight.detach().clone()
    model(torch.ones(4, 8)).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight)


def test_a_recipe_exports_with_a_card_naming_it(tmp_path):
    out = tmp_path / "hyperparam.lofw"
    assert cli(["pretrained", "export", "hyperparam", "--format", "torch", "--out", str(out), "--name", "hp"]) == 0
    manifest, _ = read_portable(out)
    assert manifest["card"]["name"] == "hp" and manifest["card"]["kind"] == "recipe"


def test_an_existing_file_needs_force_and_a_missing_out_is_refused(tmp_path, capsys):
    out = tmp_path / "star.lofw"
    out.write_text("keep me")
    assert cli(["pretrained", "export", "pretrained:star", "--format", "torch", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert cli(["pretrained", "export", "pretrained:star", "--format", "torch"]) == 2
    assert "--out" in capsys.readouterr().err
    assert cli(["pretrained", "export", "pretrained:star", "--format", "torch", "--out", str(out), "--force"]) == 0
    assert read_portable(out)[0]["card"]["name"] == "star"


def test_a_whole_optimizer_component_cannot_be_exported():
    with pytest.raises(ConfigError, match="only a composed LearnedOptimizer"):
        portable_parts(DensePreconditioner(dim=2))


def test_every_exported_array_is_a_meta_parameter():
    opt = lofw.build("star_stable")
    _, arrays = portable_parts(opt)
    assert sum(a.size for a in arrays.values()) == lofw.count_meta_parameters(opt)
