"""A slow, independent NumPy transcription of star_spec.md 1.4-1.6, for tests.

Written element by element from the spec's prose, sharing no code with
lofw_plugins: decays fixed at their initial values (zero offsets).
"""

from __future__ import annotations

import itertools

import numpy as np

MOM = (0.9, 0.99, 0.999)
RMS = 0.999
FAC = (0.9, 0.99, 0.999)
TAUS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)


def rsqrt(x):
    return 1.0 / np.sqrt(x)


class ReferenceAccumulators:
    """Accumulators of one tensor, updated with ``step(g)``."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.m = [np.zeros(shape) for _ in MOM]
        self.v = np.zeros(shape)
        if len(shape) >= 2:
            order = sorted(range(len(shape)), key=lambda i: (shape[i], i))
            self.d1, self.d0 = order[-2], order[-1]
            self.row = [np.zeros(shape) for _ in FAC]  # kept tiled to the full shape
            self.col = [np.zeros(shape) for _ in FAC]
        else:
            self.d1 = self.d0 = None
            self.diag = [np.zeros(shape) for _ in FAC]

    def step(self, g):
        g = np.asarray(g, np.float64)
        self.m = [b * m + (1 - b) * g for b, m in zip(MOM, self.m)]
        self.v = RMS * self.v + (1 - RMS) * g * g
        gsq = g * g + 1e-30
        if self.d0 is None:
            self.diag = [b * d + (1 - b) * gsq for b, d in zip(FAC, self.diag)]
            return
        row_mean = np.mean(gsq, axis=self.d0, keepdims=True) * np.ones(self.shape)
        col_mean = np.mean(gsq, axis=self.d1, keepdims=True) * np.ones(self.shape)
        self.row = [b * r + (1 - b) * row_mean for b, r in zip(FAC, self.row)]
        self.col = [b * c + (1 - b) * col_mean for b, c in zip(FAC, self.col)]

    def factors(self, i):
        """Row and column factors of decay i, tiled to the full shape."""
        r, c = self.row[i], self.col[i]
        # mean of the row statistic over axis d1 (the tiled copy has the same mean)
        rc = np.mean(r, axis=self.d1, keepdims=True)
        rf = rsqrt(np.maximum(r / (rc + 1e-9), 1e-9))
        cf = rsqrt(np.maximum(c, 1e-9))
        return rf, cf

    def features(self, g, p, t):
        """The 39 normalised inputs, shape ``shape + (39,)``."""
        g, p = np.asarray(g, np.float64), np.asarray(p, np.float64)
        feats = [g, p, *self.m, self.v]
        feats += [m * rsqrt(self.v + 1e-6) for m in self.m]
        feats += [rsqrt(self.v + 1e-6)]
        if self.d0 is None:
            feats += [g * rsqrt(np.maximum(d + 1e-9, 1e-9)) for d in self.diag]
            feats += list(self.diag) + list(self.diag)
            feats += [rsqrt(d + 1e-8) for d in self.diag] * 2
            feats += [m * (d + 1e-6) ** -0.5 for m, d in zip(self.m, self.diag)]
        else:
            fs = [self.factors(i) for i in range(3)]
            feats += [g * rf * cf for rf, cf in fs]
            feats += list(self.row) + list(self.col)
            feats += [rsqrt(r + 1e-8) for r in self.row] + [rsqrt(c + 1e-8) for c in self.col]
            feats += [m * rf * cf for m, (rf, cf) in zip(self.m, fs)]
        assert len(feats) == 28
        normed = []
        for f in feats:
            f = f * np.ones(self.shape)
            normed.append(f / np.sqrt(1e-5 + np.mean(f * f)))
        normed += [np.tanh(t / tau - 1.0) * np.ones(self.shape) for tau in TAUS]
        return np.stack(normed, axis=-1)


def mlp(x, weights, biases):
    """The per-element MLP, by explicit loops over units."""
    h = x
    for layer, (w, b) in enumerate(zip(weights, biases)):
        out = np.zeros(h.shape[:-1] + (w.shape[1],))
        for j, k in itertools.product(range(w.shape[1]), range(w.shape[0])):
            out[..., j] += h[..., k] * w[k, j]
        out += b
        h = np.maximum(out, 0.0) if layer < len(weights) - 1 else out
    return h


def reference_update(acc, g, p, t, weights, biases, heads, *, b1, b3, preconditioned):
    """The whole update of one tensor (star_spec 1.6, paper eqs. 21-22), element by element.

    ``acc`` must already have stepped on ``g``. ``heads`` names the MLP outputs
    in order; present names switch terms on: ``nominal_magnitude`` -> the
    nominal term ``b1 exp(1e-3 n) mean_i(m_i) / sqrt(v + 1e-6)``;
    ``direction`` (+ ``blackbox_magnitude``) -> the blackbox term
    ``b3 d exp(1e-3 a)``, divided by ``sqrt(v + 1e-6)`` when ``preconditioned``.
    Returns the additive update ``-(nominal + blackbox)``.
    """
    out = mlp(acc.features(g, p, t), weights, biases)
    head = {name: out[..., i] for i, name in enumerate(heads)}
    step = np.zeros(acc.shape)
    if "nominal_magnitude" in head:
        step += b1 * np.exp(1e-3 * head["nominal_magnitude"]) * np.mean(acc.m, axis=0) * rsqrt(acc.v + 1e-6)
    if "direction" in head:
        blackbox = b3 * head["direction"] * np.exp(1e-3 * head["blackbox_magnitude"])
        step += blackbox * rsqrt(acc.v + 1e-6) if preconditioned else blackbox
    return -step
