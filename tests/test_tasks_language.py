"""The byte language models against numpy references written with explicit loops."""

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxtyping import Array

from lofw.tasks import build_task
from lofw.testing import check_component, losses_before_and_after
from lofw_plugins.dataset.text_dataset import AbstractTextDataset, corpus_to_device
from lofw_plugins.task.lstm_lm import LSTMLM
from lofw_plugins.task.transformer_lm import TransformerLM


class FakeText(AbstractTextDataset):
    """Random bytes in every split."""

    corpus: dict[str, Array]
    sequence_length: int
    vocab_size: ClassVar[int] = 256

    def __init__(self, sequence_length=6, n=400, seed=0):
        rng = np.random.default_rng(seed)
        self.sequence_length = sequence_length
        splits = {s: rng.integers(0, 256, n, dtype=np.uint8) for s in ("train", "inner_valid", "outer_valid", "test")}
        self.corpus = corpus_to_device(splits, "fake_text", sequence_length)


def count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_ln(x, p):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * p["scale"] + p["offset"]


def numpy_lstm_logits(p, tokens):
    """Step by step: gates [i, g, f, o] from [e_t, h], forget bias +1."""
    e = p["embed"][tokens]
    hidden = p["lstm"]["w"].shape[1] // 4
    h = c = np.zeros((tokens.shape[0], hidden))
    out = []
    for t in range(tokens.shape[1]):
        z = np.concatenate([e[:, t], h], -1) @ p["lstm"]["w"] + p["lstm"]["b"]
        i, g, f, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = sigmoid(f + 1) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h @ p["output"]["w"] + p["output"]["b"])
    return np.stack(out, 1)


def numpy_gelu(x):  # the tanh approximation (jax.nn.gelu's default)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def numpy_transformer_logits(p, tokens, layers, heads, positions):
    b, t = tokens.shape
    d = p["embed"].shape[1]
    if positions == "learned":
        pos = p["positions"][:t]
    else:
        pos = np.array([[math.sin(s / 10000 ** (i / d)) if i % 2 == 0 else math.cos(s / 10000 ** ((i - 1) / d))
                         for i in range(d)] for s in range(t)])
    x = p["embed"][tokens] + pos
    dh = d // heads
    for n in range(layers):
        q_ = p[f"layer_{n}"]
        a = numpy_ln(x, q_["ln_1"])
        q, k, v = (a @ q_[m]["w"] + q_[m]["b"] for m in ("query", "key", "value"))
        out = np.zeros_like(x)
        for hd in range(heads):
            cols = slice(hd * dh, (hd + 1) * dh)
            for i in range(t):  # query position i sees keys 0..i
                s = np.einsum("bc,bjc->bj", q[:, i, cols], k[:, :i + 1, cols]) / math.sqrt(dh)
                w = np.exp(s - s.max(-1, keepdims=True))
                w /= w.sum(-1, keepdims=True)
                out[:, i, cols] = np.einsum("bj,bjc->bc", w, v[:, :i + 1, cols])
        x = x + out @ q_["output"]["w"] + q_["output"]["b"]
        m = numpy_ln(x, q_["ln_2"])
        x = x + numpy_gelu(m @ q_["mlp_in"]["w"] + q_["mlp_in"]["b"]) @ q_["mlp_out"]["w"] + q_["mlp_out"]["b"]
    return numpy_ln(x, p["ln_final"]) @ p["head"]["w"] + p["head"]["b"]


def run_jitted(task, key):
    """Perturbed parameters (off-init biases and norms), a batch, logits and loss, in one compilation."""

    @jax.jit
    def run(key):
        params = jax.tree.map(lambda x: x + 0.05, task.init(key))
        batch = task.sample_batch(jax.random.fold_in(key, 1))
        return params, batch, task.logits(params, batch["tokens"][:, :-1]), task.loss(params, batch)

    params, batch, logits, loss = run(key)
    return jax.tree.map(lambda a: np.asarray(a, np.float64), params), np.asarray(batch["tokens"]), logits, loss


def numpy_loss(logits, targets):
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.mean(np.take_along_axis(log_p, targets[..., None], -1))


def test_lstm_count_logits_and_loss_match_numpy():
    task = LSTMLM(FakeText(), embed_size=5, hidden_size=7, batch_size=3)
    v, e, h = 256, 5, 7
    assert count(jax.eval_shape(task.init, jax.random.key(0))) == v * e + (e + h) * 4 * h + 4 * h + h * v + v
    assert count(jax.eval_shape(LSTMLM(FakeText(32), batch_size=2).init, jax.random.key(0))) == 492_800  # paper
    params, tokens, logits, loss = run_jitted(task, jax.random.key(0))
    ref = numpy_lstm_logits(params, tokens[:, :-1])
    np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-5)
    assert float(loss) == pytest.approx(numpy_loss(ref, tokens[:, 1:]), rel=1e-5)


def transformer_count(v, d, n, r, length=None):
    layer = 2 * d + 4 * (d * d + d) + 2 * d + d * r * d + r * d + r * d * d + d
    return v * d + (length * d if length else 0) + n * layer + 2 * d + d * v + v


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_transformer_count_logits_and_loss_match_numpy(positions):
    task = TransformerLM(FakeText(), num_layers=2, width=8, num_heads=2, mlp_ratio=3, positions=positions,
                         batch_size=2)
    length = 6 if positions == "learned" else None
    assert count(jax.eval_shape(task.init, jax.random.key(0))) == transformer_count(256, 8, 2, 3, length)
    params, tokens, logits, loss = run_jitted(task, jax.random.key(0))
    ref = numpy_transformer_logits(params, tokens[:, :-1], 2, 2, positions)
    np.testing.assert_allclose(logits, ref, rtol=2e-4, atol=2e-5)
    assert float(loss) == pytest.approx(numpy_loss(ref, tokens[:, 1:]), rel=1e-5)


def test_paper_transformer_count():
    task = TransformerLM(FakeText(128), batch_size=2)  # 5 layers, width 256, 8 heads, MLP 4x, learned positions
    assert count(jax.eval_shape(task.init, jax.random.key(0))) == transformer_count(256, 256, 5, 4, 128)


@pytest.mark.parametrize("make", [
    lambda ds: LSTMLM(ds, embed_size=4, hidden_size=6, batch_size=2),
    lambda ds: TransformerLM(ds, num_layers=1, width=8, num_heads=2, batch_size=2),
], ids=["lstm", "transformer"])
def test_changing_a_later_byte_leaves_earlier_logits_unchanged(make):
    task = make(FakeText(sequence_length=10))
    params = task.init(jax.random.key(0))
    logits = jax.jit(lambda p, x: task.logits(p, x))
    x = task.sample_batch(jax.random.key(1))["tokens"][:, :-1]
    k = 6
    changed = x.at[:, k].set((x[:, k] + 17) % 256)
    a, b = np.asarray(logits(params, x)), np.asarray(logits(params, changed))
    np.testing.assert_array_equal(a[:, :k], b[:, :k])
    assert np.all(np.abs(a[:, k:] - b[:, k:]).max(-1) > 1e-6)  # every later position sees the change


@pytest.mark.parametrize("name", ["python_lstm", "python_transformer"])
def test_registry_byte_models_start_at_ln256_learn_under_adam_and_pass_the_contract(name):
    task = build_task(name)
    assert task.chance_loss == pytest.approx(math.log(256))
    assert task.max_meta_loss == pytest.approx(1.5 * math.log(256))
    assert float(task.normalizer(jnp.float32(jnp.nan))) == pytest.approx(1.5 * math.log(256))
    tx = optax.adam(1e-2)

    before, after = losses_before_and_after(task, tx, key=jax.random.key(0), valid_batch=64, valid_key=jax.random.key(9))
    assert abs(float(before) - math.log(256)) < 0.5
    assert float(after) < float(before) - 1.0
    check_component(task)
