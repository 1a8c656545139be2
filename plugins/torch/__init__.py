"""PyTorch implementations of lofw's built-in update-rule components (entry-point group ``lofw.torch``).

Each class mirrors the JAX component of the same registry name, in float32,
one parameter tensor at a time; tests/test_torch_parity.py holds every one to
the JAX update. No module here imports JAX.
"""

from __future__ import annotations

import lofw
from lofw_plugins.torch import features, magnitude, network, nominal, preconditioner


@lofw.hookimpl
def lofw_register_torch_components(register):
    table = {
        "features": {"adafactor": features.AdafactorFeatures},
        "nominal": {"sgd": nominal.SGD, "aggmo": nominal.AggMo, "adam": nominal.Adam, "adam_aggmo": nominal.AdamAggMo},
        "network": {"mlp": network.MLP},
        "preconditioner": {
            "rms": preconditioner.RMS,
            "identity": preconditioner.Identity,
            "centered_rms": preconditioner.CenteredRMS,
            "clipped_rms": preconditioner.ClippedRMS,
            "tensor_limited_rms": preconditioner.TensorLimitedRMS,
            "bias_corrected_rms": preconditioner.BiasCorrectedRMS,
        },
        "magnitude": {"exp": magnitude.Exp, "constant": magnitude.Constant},
    }
    for kind, classes in table.items():
        for name, cls in classes.items():
            register(kind, name, cls)
