"""The table of lofw's built-in (JAX) components, registry name -> class."""

from __future__ import annotations

from lofw_plugins.dataset.digits import Digits
from lofw_plugins.dataset.lm1b import LM1B
from lofw_plugins.dataset.python_source import PythonSource
from lofw_plugins.dataset.tfds_datasets import CIFAR10, MNIST, FashionMNIST, ImageNet32
from lofw_plugins.estimator import ES, PES, TBPTT
from lofw_plugins.features.adafactor import AdafactorFeatures
from lofw_plugins.magnitude.magnitudes import Constant, Exp
from lofw_plugins.network.mlp import MLP
from lofw_plugins.nominal.momentum import SGD, Adam, AdamAggMo, AggMo
from lofw_plugins.optimizer.nqm_dense import DensePreconditioner
from lofw_plugins.preconditioner.rms import RMS, Identity
from lofw_plugins.preconditioner.stable import BiasCorrectedRMS, CenteredRMS, ClippedRMS, TensorLimitedRMS
from lofw_plugins.schedule.schedules import Constant as ConstantHorizon, LogUniform
from lofw_plugins.task.conv import Conv
from lofw_plugins.task.gradient_noise import GradientNoise
from lofw_plugins.task.image_mlp import ImageMLP
from lofw_plugins.task.init_scale import InitScale
from lofw_plugins.task.label_noise import LabelNoise
from lofw_plugins.task.lstm_lm import LSTMLM
from lofw_plugins.task.nqm import NQMTask
from lofw_plugins.task.random_quadratic import RandomQuadratic
from lofw_plugins.task.reparam import Reparam
from lofw_plugins.task.resnet import ResNet
from lofw_plugins.task.small_batch import SmallBatch
from lofw_plugins.task.student_teacher import StudentTeacher
from lofw_plugins.task.test_functions import Parabola, Rosenbrock
from lofw_plugins.task.transformer_lm import TransformerLM

COMPONENTS = {
    "adafactor": AdafactorFeatures,
    "sgd": SGD,
    "aggmo": AggMo,
    "adam": Adam,
    "adam_aggmo": AdamAggMo,
    "mlp": MLP,
    "rms": RMS,
    "identity": Identity,
    "centered_rms": CenteredRMS,
    "clipped_rms": ClippedRMS,
    "tensor_limited_rms": TensorLimitedRMS,
    "bias_corrected_rms": BiasCorrectedRMS,
    "exp": Exp,
    "constant": Constant,
    "pes": PES,
    "es": ES,
    "tbptt": TBPTT,
    "digits": Digits,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
    "imagenet32": ImageNet32,
    "lm1b": LM1B,
    "python_source": PythonSource,
    "image_mlp": ImageMLP,
    "conv": Conv,
    "resnet": ResNet,
    "lstm_lm": LSTMLM,
    "transformer_lm": TransformerLM,
    "nqm": NQMTask,
    "reparam": Reparam,
    "init_scale": InitScale,
    "gradient_noise": GradientNoise,
    "random_quadratic": RandomQuadratic,
    "student_teacher": StudentTeacher,
    "label_noise": LabelNoise,
    "small_batch": SmallBatch,
    "parabola": Parabola,
    "rosenbrock": Rosenbrock,
    "dense_preconditioner": DensePreconditioner,
}

#: Horizon schedules (kind ``schedule``); a table of their own because
#: ``constant`` is also a magnitude's name (names are unique within a kind).
SCHEDULES = {
    "constant": ConstantHorizon,
    "log_uniform": LogUniform,
}
