"""The generalisation tasks of registry.yaml: arguments valid, sizes as written out here.

Paper-scale entries are built on stand-in datasets of the same geometry (their
data is not on this machine); the offline entries are built as registered.
"""

import math

import jax
import pytest
from test_tasks import FakeImages
from test_tasks_language import FakeText, transformer_count

import lofw
from lofw.tasks import build_task
from lofw_plugins.task.image_mlp import ImageMLP
from lofw_plugins.task.lstm_lm import LSTMLM
from lofw_plugins.task.resnet import ResNet
from lofw_plugins.task.transformer_lm import TransformerLM

NAMES = ("cifar10_mlp_ln", "imagenet32_resnet", "lm1b_lstm", "lm1b_transformer",
         "digits_mlp_ln", "digits_resnet", "python_lstm", "python_transformer")


def count(task):
    return sum(x.size for x in jax.tree.leaves(jax.eval_shape(task.init, jax.random.key(0))))


def arguments(name):
    spec = dict(lofw.load_registry().tasks[name])
    return spec.pop("name"), spec.pop("dataset"), spec


def mlp_ln_count(sizes):
    linear = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    return linear + sum(2 * h for h in sizes[1:-1])


def test_all_generalisation_tasks_are_registered():
    assert set(NAMES) <= set(lofw.load_registry().tasks)


def test_paper_scale_entries_on_stand_in_data():
    name, dataset, kwargs = arguments("cifar10_mlp_ln")
    assert (name, dataset) == ("image_mlp", {"name": "cifar10"})
    task = ImageMLP(FakeImages(shape=(32, 32, 3), n=20), **kwargs)
    assert task.layer_norm and count(task) == mlp_ln_count((3072, 128, 128, 128, 10)) == 428_426

    name, dataset, kwargs = arguments("imagenet32_resnet")
    assert (name, dataset) == ("resnet", {"name": "imagenet32"})
    assert ResNet(FakeImages(shape=(32, 32, 3), n=20), **kwargs).channels == (128, 256, 512, 512)

    name, dataset, kwargs = arguments("lm1b_lstm")
    assert (name, dataset) == ("lstm_lm", {"name": "lm1b", "sequence_length": 32})
    assert count(LSTMLM(FakeText(32), **kwargs)) == 492_800

    name, dataset, kwargs = arguments("lm1b_transformer")
    assert (name, dataset) == ("transformer_lm", {"name": "lm1b", "sequence_length": 128})
    assert count(TransformerLM(FakeText(128), **kwargs)) == transformer_count(256, 256, 5, 4, 128)


def test_offline_entries_build_with_their_sizes():
    mlp = build_task("digits_mlp_ln")
    assert count(mlp) == mlp_ln_count((64, 32, 32, 32, 10)) and mlp.chance_loss == pytest.approx(math.log(10))
    lstm = build_task("python_lstm")
    assert count(lstm) == 256 * 32 + (32 + 64) * 4 * 64 + 4 * 64 + 64 * 256 + 256
    transformer = build_task("python_transformer")
    assert count(transformer) == transformer_count(256, 32, 2, 4, 32)
    assert lstm.chance_loss == transformer.chance_loss == pytest.approx(math.log(256))
    resnet = build_task("digits_resnet")
    # stem 3x3x1x16; blocks 16->16 (stride 2: projection), 16->32 (projection); LayerNorm; head 32x10
    block = lambda ci, co: 2 * ci + 9 * ci * co + 2 * co + 9 * co * co + ci * co  # noqa: E731
    assert count(resnet) == 9 * 16 + block(16, 16) + block(16, 32) + 2 * 32 + 32 * 10 + 10


def test_tasks_without_a_reference_loss_say_none():
    assert build_task("nqm").chance_loss is None
