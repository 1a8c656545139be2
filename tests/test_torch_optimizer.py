"""lofw.torch.LearnedOptimizer keeps torch.optim's conventions, imports no JAX, and refuses what it cannot use."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import zipfile

import pytest
import torch

import lofw
import lofw.torch
from lofw.errors import ConfigError, PluginError
from lofw.portable import portable_bytes, read_portable


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(128, 64, generator=g), torch.randint(0, 10, (128,), generator=g)


def _train(model, opt, steps: int, seed: int = 0) -> list[float]:
    x, y = _batch(seed)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_importing_lofw_torch_and_stepping_a_shipped_optimizer_imports_no_jax():
    code = (
        "import sys, torch, lofw.torch\n"
        "m = torch.nn.Linear(4, 3)\n"
        "opt = lofw.torch.pretrained('star_stable', m.parameters())\n"
        "m(torch.ones(2, 4)).sum().backward(); opt.step()\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('jax', 'jaxlib', 'equinox', 'optax'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("name", ["star", "star_stable", "star_stable_mix", "blackbox", "hyperparam"])
def test_every_shipped_optimizer_trains_a_torch_model(name):
    model = _model()
    losses = _train(model, lofw.torch.pretrained(name, model.parameters()), 100)
    assert losses[-1] < 0.5 * losses[0]


def test_the_shipped_portable_files_hold_the_shipped_meta_parameters():
    """Each plugins/pretrained/NAME/optimizer.lofw is the export of NAME's params.eqx (regenerate with
    `lofw pretrained export pretrained:NAME --format torch --out plugins/pretrained/NAME/optimizer.lofw --force`)."""
    import numpy as np

    import lofw
    from lofw.export_portable import portable_parts

    shipped = lofw.torch.shipped()
    assert set(shipped) == {"star", "star_stable", "star_stable_mix", "blackbox", "hyperparam"}
    for name, path in shipped.items():
        manifest, arrays = read_portable(path)
        spec, expected = portable_parts(lofw.pretrained(name))
        assert manifest["optimizer"] == spec and set(arrays) == set(expected), name
        assert all(np.array_equal(arrays[k], expected[k]) for k in arrays), name


def test_parameter_groups_scale_and_parameters_without_gradients():
    model = _model()
    first, second = model[0], model[2]
    frozen = torch.nn.Parameter(torch.ones(3))
    opt = lofw.torch.pretrained("star_stable", [{"params": first.parameters(), "scale": 0.0},
                                                {"params": [*second.parameters(), frozen]}])
    before = [p.detach().clone() for p in model.parameters()]
    _train(model, opt, 3)
    after = list(model.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before[:2], after[:2]))  # scale 0: unchanged
    assert not any(torch.equal(b, a) for b, a in zip(before[2:], after[2:]))
    assert opt.state[first.weight]["step"] == 3  # its statistics still advance
    assert frozen not in opt.state and torch.equal(frozen, torch.ones(3))


def test_step_with_a_closure_returns_the_loss_and_hands_it_to_the_features(monkeypatch):
    model = _model()
    opt = lofw.torch.pretrained("star", model.parameters())
    seen = []
    update = opt.rule.update

    def spy(grad, param, state, step, loss=None):
        seen.append(loss)
        return update(grad, param, state, step, loss)

    monkeypatch.setattr(opt.rule, "update", spy)
    x, y = _batch()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and len(seen) == 4
    assert all(s is not None and float(s) == loss.item() and not s.requires_grad for s in seen)


def test_state_dict_resumes_bit_identically():
    model, opt_model = _model(), None
    opt = lofw.torch.pretrained("star_stable", model.parameters())
    _train(model, opt, 10)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    _train(model, opt, 10, seed=1)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = _model(seed=5)
    resumed.load_state_dict(saved["model"])
    opt_model = lofw.torch.pretrained("star_stable", resumed.parameters())
    opt_model.load_state_dict(saved["opt"])
    _train(resumed, opt_model, 10, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))


def test_bfloat16_parameters_keep_float32_statistics_also_after_loading():
    model = _model().to(torch.bfloat16)
    opt = lofw.torch.pretrained("star_stable", model.parameters())
    x, y = _batch()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x.to(torch.bfloat16)), y).backward()
        opt.step()
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(v.dtype == torch.float32 for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor))
    again = lofw.torch.pretrained("star_stable", model.parameters())
    again.load_state_dict(copy.deepcopy(opt.state_dict()))
    for p in model.parameters():
        assert all(torch.equal(again.state[p][k], opt.state[p][k]) for k in opt.state[p] if k != "step")
        assert again.state[p]["momentum"].dtype == torch.float32


def test_a_state_dict_of_another_recipe_or_layout_is_refused():
    model = _model()
    opt = lofw.torch.pretrained("star", model.parameters())
    _train(model, opt, 2)
    state = opt.state_dict()
    with pytest.raises(ConfigError, match="another recipe"):
        lofw.torch.pretrained("star_stable", model.parameters()).load_state_dict(state)
    with pytest.raises(ConfigError, match="shapes"):
        lofw.torch.pretrained("star", list(model.parameters())[::-1]).load_state_dict(state)
    with pytest.raises(ConfigError, match="not the state_dict of a lofw"):
        lofw.torch.pretrained("star", model.parameters()).load_state_dict(torch.optim.Adam(model.parameters()).state_dict())


def test_sparse_gradients_are_refused_with_a_clear_error():
    embedding = torch.nn.Embedding(10, 4, sparse=True)
    opt = lofw.torch.pretrained("star", embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


def test_damaged_or_foreign_files_are_refused_with_one_message(tmp_path):
    good = lofw.torch.shipped()["star"].read_bytes()
    cases = {
        "truncated.lofw": good[: len(good) // 2],
        "text.lofw": b"not a zip file",
    }
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    cases["flipped.lofw"] = bytes(flipped)
    edited = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(edited, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data.replace(b'"blackbox_scale": 0.001', b'"blackbox_scale": 0.002'))
    cases["edited.lofw"] = edited.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match=name) as info:
            lofw.torch.load(tmp_path / name, _model().parameters())
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="neither a portable file nor a shipped optimizer.*star_stable"):
        lofw.torch.pretrained("no_such_optimizer", _model().parameters())


def test_a_component_without_a_torch_implementation_names_the_hook(tmp_path):
    manifest, arrays = read_portable(lofw.torch.shipped()["star"])
    spec = {**manifest["optimizer"], "nominal": {"component": "lion", "fields": {}}}
    path = tmp_path / "lion.lofw"
    path.write_bytes(portable_bytes(spec, arrays, {}))
    with pytest.raises(PluginError, match=r"nominal component 'lion'.*lofw_register_torch_components.*'lofw.torch'"):
        lofw.torch.load(path, _model().parameters())


class _SignNominal:
    """A third-party nominal term: the sign of the fastest momentum."""

    calls = 0

    def __init__(self, beta: float):
        self.beta = beta

    def direction(self, stats):
        _SignNominal.calls += 1
        return torch.sign(stats.momentum[0])


class _SignPlugin:
    @lofw.hookimpl
    def lofw_register_torch_components(self, register):
        register("nominal", "sign", _SignNominal)


def test_a_plugin_registers_a_torch_implementation_of_its_own_component(tmp_path):
    manifest, arrays = read_portable(lofw.torch.shipped()["hyperparam"])
    spec = {**manifest["optimizer"], "nominal": {"component": "sign", "fields": {"beta": 0.5}}}
    path = tmp_path / "sign.lofw"
    path.write_bytes(portable_bytes(spec, arrays, {}))
    pm = lofw.torch.get_plugin_manager()
    pm.register(_SignPlugin(), name="sign-plugin")
    lofw.torch.refresh()
    try:
        assert lofw.torch.torch_components("nominal")["sign"] is _SignNominal
        model = _model()
        opt = lofw.torch.load(path, model.parameters())
        assert opt.rule.components["nominal"].beta == 0.5
        before = [p.detach().clone() for p in model.parameters()]
        _train(model, opt, 1)
        assert _SignNominal.calls == 4
        # hyperparam's update is b1 * exp(1e-3 * head) * direction: every element moves by b1, to 1%
        b1 = float(opt.rule.nominal_scale)
        steps = [torch.abs(a.detach() - b) for a, b in zip(model.parameters(), before)]
        assert all(float(torch.max(torch.abs(s[s > 0] / b1 - 1))) < 0.01 for s in steps)
    finally:
        pm.unregister(name="sign-plugin")
        lofw.torch.refresh()
    assert "sign" not in lofw.torch.torch_components("nominal")


def test_a_compiled_model_trains_with_the_optimizer():
    """torch.compile of the model (the optimizer's step itself runs eagerly)."""
    model = _model()
    compiled = torch.compile(model)
    opt = lofw.torch.pretrained("star_stable", model.parameters())
    losses = _train(compiled, opt, 5)
    assert losses[-1] < losses[0]
