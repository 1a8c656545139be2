"""The ``adafactor`` features in PyTorch (plugins/features/adafactor.py has the maths and its sources)."""

from __future__ import annotations

import torch

from lofw.torch import LeafFeatures, LeafStats

EPS_GSQ = 1e-30
EPS_FACTOR = 1e-9
NORM_EPS = 1e-5
RMS_EPS = 1e-6
FACTORED_RSQRT_EPS = 1e-8
DIAG_EPS = 1e-9
OFFSET_SCALE = 10.0


def factored_dims(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(d1, d0)``: the second largest and the largest axis (ties: the earlier axis first), or None below rank 2."""
    if len(shape) < 2:
        return None
    order = sorted(range(len(shape)), key=lambda i: shape[i])  # sorted() is stable, as NumPy's stable argsort
    return order[-2], order[-1]


def _decays(init: list[float], offset: torch.Tensor, clip: bool) -> torch.Tensor:
    beta = 1.0 - (1.0 - torch.tensor(init, dtype=torch.float32, device=offset.device)) * torch.exp(OFFSET_SCALE * offset)
    return beta.clamp(0.0, 1.0) if clip else beta


class AdafactorFeatures:
    """STAR's 28 optimizer features and 11 step features, per tensor, float32."""

    def __init__(self, momentum_offsets, rms_offset, adafactor_offsets, momentum_decays, rms_decay,
                 adafactor_decays, time_scales):
        self.beta_m = _decays(list(momentum_decays), momentum_offsets, clip=False)
        self.beta_v = _decays([rms_decay], rms_offset, clip=True)[0]
        self.beta_f = _decays(list(adafactor_decays), adafactor_offsets, clip=True)
        self.time_scales = torch.tensor(time_scales, dtype=torch.float32, device=momentum_offsets.device)
        self.n_momenta, self.n_factored = len(momentum_decays), len(adafactor_decays)

    def init(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        shape, k = tuple(param.shape), self.n_factored
        zeros = lambda *s: torch.zeros(s, dtype=torch.float32, device=param.device)
        state = {"momentum": zeros(self.n_momenta, *shape), "second_moment": zeros(*shape)}
        dims = factored_dims(shape)
        if dims is None:
            state["diag"] = zeros(*shape, k)
        else:
            d1, d0 = dims
            state["row"] = zeros(*(s for i, s in enumerate(shape) if i != d0), k)
            state["col"] = zeros(*(s for i, s in enumerate(shape) if i != d1), k)
        return state

    def update(self, grad, param, state, step, loss=None):
        state = self._accumulate(grad, state)
        channels, squares = self._channels(grad, param, state)
        scales = torch.rsqrt(NORM_EPS + torch.stack([s.mean() for s in squares]))
        t = torch.tensor(float(step), dtype=torch.float32, device=grad.device)
        features = LeafFeatures(channels, scales, torch.tanh(t / self.time_scales - 1.0))
        stats = LeafStats(grad=grad, param=param, momentum=state["momentum"], second_moment=state["second_moment"],
                          step=step, second_moment_decay=self.beta_v)
        return state, stats, features

    def _accumulate(self, grad, state):
        ndim = grad.dim()
        lead = lambda x: x.reshape(x.shape + (1,) * ndim)
        gsq = torch.square(grad) + EPS_GSQ
        out = {
            "momentum": lead(self.beta_m) * state["momentum"] + lead(1.0 - self.beta_m) * grad,
            "second_moment": self.beta_v * state["second_moment"] + (1.0 - self.beta_v) * torch.square(grad),
        }
        dims = factored_dims(tuple(grad.shape))
        if dims is None:
            out["diag"] = self.beta_f * state["diag"] + (1.0 - self.beta_f) * gsq[..., None]
        else:
            d1, d0 = dims
            out["row"] = self.beta_f * state["row"] + (1.0 - self.beta_f) * gsq.mean(dim=d0)[..., None]
            out["col"] = self.beta_f * state["col"] + (1.0 - self.beta_f) * gsq.mean(dim=d1)[..., None]
        return out

    def _channels(self, grad, param, s):
        """The 28 raw channels in the JAX features' order, and their squares (factored ones at their own shape)."""
        moms = list(s["momentum"])
        v = s["second_moment"]
        rsqrt_v = torch.rsqrt(v + RMS_EPS)
        inv_v = 1.0 / (v + RMS_EPS)
        dims = factored_dims(tuple(grad.shape))
        k = self.n_factored
        if dims is None:
            diag = s["diag"]
            rows = cols = [diag[..., i] for i in range(k)]
            fac = torch.rsqrt(torch.clamp(diag + DIAG_EPS, min=DIAG_EPS))
            fac_g = [grad * fac[..., i] for i in range(k)]
            rsqrt_d = torch.rsqrt(diag + RMS_EPS)
            fac_m = [m * rsqrt_d[..., i] for i, m in enumerate(moms)]
            rsqrt_diag = torch.rsqrt(diag + FACTORED_RSQRT_EPS)
            rsqrt_rows = rsqrt_cols = [rsqrt_diag[..., i] for i in range(k)]
        else:
            d1, d0 = dims
            row, col = s["row"], s["col"]
            row_axis = d1 - 1 if d1 > d0 else d1
            row_mean = row.mean(dim=row_axis, keepdim=True)
            row_f = torch.rsqrt(torch.clamp(row / (row_mean + EPS_FACTOR), min=EPS_FACTOR))
            col_f = torch.rsqrt(torch.clamp(col, min=EPS_FACTOR))
            at_rows = lambda x: [x[..., i].unsqueeze(d0) for i in range(k)]
            at_cols = lambda x: [x[..., i].unsqueeze(d1) for i in range(k)]
            rows, cols = at_rows(row), at_cols(col)
            rsqrt_rows = at_rows(torch.rsqrt(row + FACTORED_RSQRT_EPS))
            rsqrt_cols = at_cols(torch.rsqrt(col + FACTORED_RSQRT_EPS))
            fac_g = [grad * rf * cf for rf, cf in zip(at_rows(row_f), at_cols(col_f))]
            fac_m = [m * rf * cf for m, rf, cf in zip(moms, at_rows(row_f), at_cols(col_f))]
        channels = ([grad, param, *moms, v] + [m * rsqrt_v for m in moms] + [rsqrt_v]
                    + fac_g + rows + cols + rsqrt_rows + rsqrt_cols + fac_m)
        squares = ([torch.square(c) for c in [grad, param, *moms, v]] + [torch.square(m) * inv_v for m in moms]
                   + [inv_v] + [torch.square(c) for c in fac_g + rows + cols + rsqrt_rows + rsqrt_cols + fac_m])
        return channels, squares
