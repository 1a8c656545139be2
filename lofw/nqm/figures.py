"""Figures 1 and 2 of the paper's section 4 as PNG files, with the numbers behind
each panel (JSON or CSV) beside them.

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend).
``make_figures(out_dir)`` runs every study; the default settings take about a
minute on two CPU cores, ``full=True`` the paper's (Appendix B.1).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lofw.nqm import stabilisers, studies

#: Study sizes: quick defaults, and the paper's setting (Appendix B.1).
DEFAULT_SETTINGS = {"variance_alphas": 25, "variance_seeds": 100, "meta_iterations": 20_000, "meta_seeds": 5}
FULL_SETTINGS = {"variance_alphas": 50, "variance_seeds": 500, "meta_iterations": 100_000, "meta_seeds": 5}

FIGURE1 = "nqm_fig1_eigenvalues"
FIGURE1_STABILISER = "nqm_fig1_stabiliser"
FIGURE2A = "nqm_fig2a_gradient_variance"
FIGURE2B = "nqm_fig2b_eigenvalues"
FIGURE2C = "nqm_fig2c_meta_loss"
#: The studies of :func:`make_figures`: Figure 1, the stabilisers' Figure 1 view
#: (docs/stable_star.md), Figure 2a, Figures 2b/2c.
STUDIES = ("figure1", "figure1_stabiliser", "figure2a", "figure2bc")


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib only when drawing
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=130)
    return path


def _write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _complex_list(z: np.ndarray) -> list[list[float]]:
    return [[float(v.real), float(v.imag)] for v in np.ravel(z)]


def write_figure1(out: Path, study: dict, name: str = FIGURE1) -> list[Path]:
    """Figure 1: four panels of eigenvalues of A in the complex plane (also the
    stabilisers' view, :func:`lofw.nqm.stabilisers.stabiliser_study`, as ``name``)."""
    import matplotlib.patches as mpatches  # matplotlib only when drawing

    panels = study["panels"]
    fig, axes = _figure(4 * len(panels), 4.3, len(panels))
    for ax, panel in zip(axes, panels):
        ax.add_patch(mpatches.Circle((0, 0), 1.0, fill=False, color="0.3", lw=1))
        ax.axhline(0, color="0.85", lw=0.8, zorder=0)
        ax.axvline(0, color="0.85", lw=0.8, zorder=0)
        ax.scatter(panel.path.real, panel.path.imag, s=3, color="0.6", zorder=1, label="intermediate")
        ax.scatter(panel.before.real, panel.before.imag, s=45, facecolors="none", edgecolors="tab:red",
                   zorder=2, label=rf"before ($\rho$ = {panel.radius_before:.3f})")
        ax.scatter(panel.after.real, panel.after.imag, s=45, marker="x", color="tab:blue",
                   zorder=3, label=rf"after ($\rho$ = {panel.radius_after:.3f})")
        ax.set_aspect("equal")
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(r"Re $\lambda(A)$")
        ax.legend(loc="lower left", fontsize=7)
    axes[0].set_ylabel(r"Im $\lambda(A)$")
    pts = np.concatenate([np.concatenate([p.path.ravel(), p.before, p.after]) for p in panels])
    lim = max(1.15, float(np.max(np.abs(pts))) * 1.08)
    for ax in axes:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    data = {
        "description": "eigenvalues of A = I - (alpha I + P) H (or the preconditioned A of eq. 12), "
                       "[real, imag], before / after each intervention and along its sweep",
        "settings": study["settings"],
        "H": study["H"].tolist(),
        "P": study["P"].tolist(),
        "panels": [
            {"name": p.name, "title": p.title, "radius_before": p.radius_before, "radius_after": p.radius_after,
             "before": _complex_list(p.before), "after": _complex_list(p.after),
             "path": [_complex_list(row) for row in p.path]}
            for p in panels
        ],
    }
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=1))
    return [_save(fig, out / f"{name}.png"), json_path]


def write_figure2a(out: Path, study: dict) -> list[Path]:
    """Figure 2a: trace of the meta-gradient variance against alpha, one curve per T."""
    from matplotlib import colormaps  # matplotlib only when drawing

    alphas, horizons, var = study["alphas"], study["horizons"], study["variance"]
    fig, (ax,) = _figure(6.4, 4.6)
    cmap = colormaps["winter_r"]  # green (T = 1) to blue (T = 1000), as in the paper
    for j, T in enumerate(horizons):
        ax.plot(alphas, var[:, j], color=cmap(j / max(1, len(horizons) - 1)), lw=1.2,
                label=f"T={T}" if j in (0, len(horizons) - 1) or T in (10, 100) else None)
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$ (P = 0); the range ends at the bound $2/\lambda_{max}(H)$")
    ax.set_ylabel(r"tr $\hat\Sigma$ of $\nabla_P$ meta-loss")
    ax.set_title(f"Meta-gradient variance ({study['settings']['n_seeds']} seeds per point)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    rows = [[f"{a:.8g}", int(T), f"{var[i, j]:.8g}"] for i, a in enumerate(alphas) for j, T in enumerate(horizons)]
    return [_save(fig, out / f"{FIGURE2A}.png"),
            _write_csv(out / f"{FIGURE2A}.csv", ["alpha", "T", "trace_variance"], rows)]


def _mean_band(x: np.ndarray, coefficient: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and mean -/+ one standard error, each EMA-smoothed."""
    mean = x.mean(axis=0)
    se = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]) if x.shape[0] > 1 else np.zeros_like(mean)
    return tuple(studies.ema(v, coefficient) for v in (mean, mean - se, mean + se))


def write_figure2bc(out: Path, study: dict, coefficient: float = studies.PAPER_EMA) -> list[Path]:
    """Figures 2b (|eigenvalues of A|) and 2c (meta-loss) during ES meta-training."""
    from matplotlib import colormaps  # matplotlib only when drawing

    fracs, alphas = study["alpha_fractions"], study["alphas"]
    eig, loss = study["eig_abs"], study["meta_loss"]
    n_iter = loss.shape[-1]
    pts = study["checkpoints"]
    colors = colormaps["viridis"](np.linspace(0.0, 0.85, len(alphas)))
    label = r"$\alpha\lambda_{max}/2$" if study["settings"]["convention"] == "bound" else r"$2\alpha/\lambda_{max}$"

    fig_b, (ax_b,) = _figure(6.4, 4.6)
    fig_c, (ax_c,) = _figure(6.4, 4.6)
    rows_b, rows_c = [], []
    # Smoothed at full resolution, drawn at log-spaced iterations (x = iteration + 1, log axis).
    show_b = studies.log_spaced(eig.shape[2] - 1, 2000)
    show_c = show_b[show_b < n_iter]
    x_b, x_c = show_b + 1, show_c + 1
    for i, (f, a) in enumerate(zip(fracs, alphas)):
        bands = [_mean_band(eig[i, :, :, k], coefficient) for k in range(eig.shape[-1])]
        for k, (m, lo, hi) in enumerate(bands):
            style = ":" if k == 0 else "-"
            ax_b.plot(x_b, m[show_b], style, color=colors[i], lw=1.3, label=f"{label} = {f:g}" if k == 0 else None)
            ax_b.fill_between(x_b, lo[show_b], hi[show_b], color=colors[i], alpha=0.2, lw=0)
        m, lo, hi = _mean_band(loss[i], coefficient)
        ax_c.plot(x_c, m[show_c], color=colors[i], lw=1.3, label=f"{label} = {f:g}")
        ax_c.fill_between(x_c, lo[show_c], hi[show_c], color=colors[i], alpha=0.2, lw=0)
        exact = study["expected_loss"][i].mean(axis=0)
        for j, it in enumerate(pts):
            rows_b.append([f"{f:g}", f"{a:.8g}", int(it)]
                          + [f"{v[it]:.8g}" for band in bands for v in band])
            if it < n_iter:
                rows_c.append([f"{f:g}", f"{a:.8g}", int(it), f"{m[it]:.8g}", f"{lo[it]:.8g}",
                               f"{hi[it]:.8g}", f"{exact[j]:.8g}"])
    settings = study["settings"]
    for ax in (ax_b, ax_c):
        ax.set_xscale("log")
        ax.set_xlabel("meta-iteration")
    ax_b.legend(fontsize=8, loc="lower right")
    ax_b.set_ylabel(r"$|\lambda_i(A)|$ (dotted: larger, solid: smaller)")
    ax_b.set_title(f"Eigenvalues of A during ES meta-training (T = {settings['T']}, "
                   f"{settings['n_seeds']} seeds, EMA {coefficient})", fontsize=10)
    ax_c.axhline(study["optimum"], color="k", ls="--", lw=1, label="optimal expected loss")
    ax_c.legend(fontsize=8, loc="upper right")
    ax_c.set_yscale("log")
    ax_c.set_ylabel(f"meta-loss (mean loss over T = {settings['T']} steps)")
    ax_c.set_title(f"Meta-loss during ES meta-training ({settings['n_seeds']} seeds, EMA {coefficient})",
                   fontsize=10)
    n_eig = eig.shape[-1]
    head_b = ["alpha_fraction", "alpha", "iteration"] + [
        f"eig{k}_{s}" for k in range(n_eig) for s in ("mean", "lo", "hi")]
    head_c = ["alpha_fraction", "alpha", "iteration", "meta_loss_mean", "meta_loss_lo", "meta_loss_hi",
              "expected_loss_exact"]
    return [_save(fig_b, out / f"{FIGURE2B}.png"), _write_csv(out / f"{FIGURE2B}.csv", head_b, rows_b),
            _save(fig_c, out / f"{FIGURE2C}.png"), _write_csv(out / f"{FIGURE2C}.csv", head_c, rows_c)]


def make_figures(
    out_dir: str | Path,
    full: bool = False,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    convention: str = "bound",
    log: Callable[[str], None] = lambda msg: None,
    only: Sequence[str] | None = None,
) -> list[Path]:
    """Run the studies of Figures 1, 2a, 2b and 2c and write them to ``out_dir``.

    Args:
        out_dir: output folder (created).
        full: the paper's sizes (500 seeds and 50 alphas for Figure 2a,
            100,000 meta-iterations for Figures 2b/2c) instead of the quick defaults.
        sizes: overrides of the keys of :data:`DEFAULT_SETTINGS`.
        seed: seed of every study.
        convention: how Figure 2b/2c's alpha values are read (see
            :func:`lofw.nqm.studies.alphas_from_fractions`).
        log: receives one progress line per study.
        only: the studies to run, a subset of :data:`STUDIES` (default all).

    Returns:
        The files written: a PNG per panel, its CSV/JSON, and ``nqm_figures.json``
        (settings and timings).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = dict(FULL_SETTINGS if full else DEFAULT_SETTINGS) | dict(sizes or {})
    unknown = set(sizes) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValueError(f"unknown sizes {sorted(unknown)}; valid: {sorted(DEFAULT_SETTINGS)}")
    chosen = tuple(STUDIES if only is None else only)
    if set(chosen) - set(STUDIES) or not chosen:
        raise ValueError(f"unknown or no studies {list(chosen)}; valid: {list(STUDIES)}")
    files: list[Path] = []
    timings = {}
    fig1 = var = meta = stab = None

    if "figure1" in chosen:
        t0 = time.perf_counter()
        fig1 = studies.intervention_study(seed=seed)
        files += write_figure1(out, fig1)
        timings["figure1"] = time.perf_counter() - t0
        log(f"figure 1 (interventions) in {timings['figure1']:.1f}s")

    if "figure1_stabiliser" in chosen:
        t0 = time.perf_counter()
        stab = stabilisers.stabiliser_study(seed=seed)
        files += write_figure1(out, stab, FIGURE1_STABILISER)
        timings["figure1_stabiliser"] = time.perf_counter() - t0
        log(f"figure 1, stabilisers (gain limit, centring) in {timings['figure1_stabiliser']:.1f}s")

    if "figure2a" in chosen:
        t0 = time.perf_counter()
        var = studies.variance_study(n_alphas=sizes["variance_alphas"], n_seeds=sizes["variance_seeds"], seed=seed)
        files += write_figure2a(out, var)
        timings["figure2a"] = time.perf_counter() - t0
        log(f"figure 2a (meta-gradient variance) in {timings['figure2a']:.1f}s")

    if "figure2bc" in chosen:
        t0 = time.perf_counter()
        meta = studies.meta_training_study(n_seeds=sizes["meta_seeds"], n_iterations=sizes["meta_iterations"],
                                           seed=seed, convention=convention)
        files += write_figure2bc(out, meta)
        timings["figure2bc"] = time.perf_counter() - t0
        log(f"figures 2b, 2c (ES meta-training) in {timings['figure2bc']:.1f}s")

    summary = out / "nqm_figures.json"
    summary.write_text(json.dumps({
        "full": full,
        "seed": seed,
        "sizes": sizes,
        "figure1": fig1 and fig1["settings"],
        "figure1_stabiliser": stab and stab["settings"],
        "figure2a": var and var["settings"] | {"horizons": var["horizons"].tolist()},
        "figure2bc": meta and meta["settings"] | {"alpha_fractions": meta["alpha_fractions"].tolist(),
                                                  "alphas": meta["alphas"].tolist(),
                                                  "optimal_expected_loss": meta["optimum"],
                                                  "ema": studies.PAPER_EMA},
        "timings_s": timings,
        "files": [p.name for p in files],
    }, indent=2))
    return files + [summary]
