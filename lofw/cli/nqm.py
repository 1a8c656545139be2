"""``lofw nqm``: the noisy quadratic model's stability check and figures (paper section 4).

    lofw nqm stability --alpha 0.3 --P "[[0.1, 0], [0, 0.2]]" [--precondition] [--d-max 1.5]
                       [--limit 4] [--center] [--json]
    lofw nqm figures --out DIR [--full] [--only figure1_stabiliser ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from lofw import nqm
from lofw.errors import ConfigError
from lofw.nqm import figures, stabilisers
from lofw.nqm.dynamics import PAPER_HESSIAN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nqm_command", metavar="SUBCOMMAND", parser_class=type(parser))
    sub.required = True

    st = sub.add_parser(
        "stability",
        help="spectral radius of the update map and the stability bounds (Theorem 1, Lemmas 2 and 3)",
        description="Eigenvalues of A = I - (alpha I + P) H (eq. 6), or of the preconditioned "
        "A = I - H^-1/2 (alpha I + P) H (eq. 12), and whether P's eigenvalues satisfy "
        "the paper's sufficient conditions for rho(A) <= 1.",
    )
    st.add_argument("--P", default=None, metavar="JSON",
                    help="the learned preconditioner as a JSON matrix, e.g. \"[[0.1, 0], [0, 0.2]]\" (default: zero)")
    st.add_argument("--alpha", type=float, default=0.0, help="nominal step size alpha >= 0 (default 0)")
    st.add_argument("--H", default=None, metavar="JSON",
                    help="symmetric positive definite Hessian as a JSON matrix (default: the paper's, eq. A.30)")
    st.add_argument("--precondition", action="store_true",
                    help="use the H^-1/2-preconditioned update of eq. 12 and Lemma 2")
    st.add_argument("--d-max", default=None, metavar="JSON",
                    help="Lemma 3: upper limits of the diagonal disturbance (a number or a JSON list); "
                    "P is then read as P~ in P = diag(d) P~")
    st.add_argument("--limit", type=float, default=None, metavar="K",
                    help="also report A with the learned gain limited to K alpha, P -> P min(1, K alpha / ||P||_2) "
                    "(the NQM analogue of the clipped_rms / tensor_limited_rms stabilisers, docs/stable_star.md)")
    st.add_argument("--center", action="store_true",
                    help="also report A with P centred, P -> (I - 1 1^T / n) P (the analogue of centered_rms); "
                    "with --limit, centred first")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(_nqm_run=run_stability)

    fg = sub.add_parser(
        "figures",
        help="Figures 1 and 2 of the paper (PNG, with the numbers as CSV/JSON)",
        description="Write the paper's Figures 1, 2a, 2b and 2c as PNG files with the numbers behind each "
        "panel. The defaults take about a minute on two CPU cores; --full uses Appendix B.1's sizes.",
    )
    fg.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    fg.add_argument("--full", action="store_true",
                    help="the paper's sizes: 500 seeds x 50 alphas for 2a, 100,000 meta-iterations for 2b/2c")
    fg.add_argument("--seed", type=int, default=0, help="seed of every study (default 0)")
    fg.add_argument("--alpha-convention", choices=("bound", "literal"), default="bound",
                    help="read Figure 2b/2c's values v of '2 alpha / lambda_max' as alpha = v * 2 / lambda_max "
                    "(fraction of the stability bound; default) or literally as alpha = v * lambda_max / 2")
    fg.add_argument("--variance-seeds", type=int, default=None, metavar="N", help="override: seeds per point of 2a")
    fg.add_argument("--variance-alphas", type=int, default=None, metavar="N", help="override: alphas of 2a")
    fg.add_argument("--meta-iterations", type=int, default=None, metavar="N",
                    help="override: ES meta-iterations of 2b/2c")
    fg.add_argument("--only", nargs="+", default=None, metavar="STUDY",
                    help="run only these studies: figure1, figure1_stabiliser (the stabilisers' view, "
                    "docs/stable_star.md), figure2a, figure2bc (default: all)")
    fg.set_defaults(_nqm_run=run_figures)


def run(args: argparse.Namespace) -> int:
    return args._nqm_run(args)


# --------------------------------------------------------------------------- stability


def parse_json_value(text: str, option: str, example: str):
    """Parse an option's JSON value (never evaluated as code); ConfigError on bad input."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise ConfigError(f"{option}: not valid JSON ({e.msg if hasattr(e, 'msg') else e}): {text!r}; "
                          f"example: {example}") from None


def parse_matrix(text: str, option: str, n: int | None = None):
    """A finite square float matrix from a JSON nested list; ConfigError naming the option otherwise."""
    example = f'{option} "[[0.1, 0], [0, 0.2]]"'
    value = parse_json_value(text, option, example)
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise ConfigError(f"{option}: expected a JSON matrix (a list of rows), got {text!r}; example: {example}")
    if len({len(r) for r in value}) != 1:
        raise ConfigError(f"{option}: rows have different lengths {[len(r) for r in value]}; example: {example}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for r in value for x in r):
        raise ConfigError(f"{option}: entries must be numbers, got {text!r}; example: {example}")
    m = np.asarray(value, dtype=np.float64)
    if m.shape[0] != m.shape[1]:
        raise ConfigError(f"{option}: must be square, got {m.shape[0]}x{m.shape[1]}")
    if n is not None and m.shape[0] != n:
        raise ConfigError(f"{option}: must be {n}x{n} to match H, got {m.shape[0]}x{m.shape[1]}")
    if not np.all(np.isfinite(m)):
        raise ConfigError(f"{option}: entries must be finite numbers")
    return m


def parse_d_max(text: str):
    """Lemma 3's ``d_max``: a positive number or a JSON list of positive numbers."""
    example = '--d-max 1.5 or --d-max "[1.0, 1.5]"'
    value = parse_json_value(text, "--d-max", example)
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        raise ConfigError(f"--d-max: expected a number or a list of numbers, got {text!r}; example: {example}")
    d = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ConfigError(f"--d-max: every d_max_i must be a positive finite number, got {text!r}")
    return d


def _complex(z) -> list[float]:
    return [float(z.real), float(z.imag)]


def stabiliser_report(H, P, alpha: float, precondition: bool, limit: float | None, center: bool) -> dict:
    """``A`` with P after the stabilisers' NQM analogues (:mod:`lofw.nqm.stabilisers`)."""
    P_s = stabilisers.stabilise(P, alpha, limit, center)
    A = nqm.update_matrix(H, P_s, alpha, precondition=precondition)
    entry = {
        "center": center,
        "limit": limit,
        "P": P_s.tolist(),
        "gain_over_alpha": float(np.linalg.norm(P_s, 2) / alpha) if alpha > 0 else None,
        "eigenvalues_A": [_complex(z) for z in nqm.eigenvalues(A)],
        "spectral_radius": nqm.spectral_radius(A),
    }
    if limit is not None and not precondition:
        entry["radius_bound"] = stabilisers.limited_radius_bound(H, alpha, limit)
        entry["symmetric_guarantee"] = stabilisers.limited_symmetric_guarantee(H, alpha, limit)
    return entry


def stability_report(H, P, alpha: float, precondition: bool = False, d_max=None,
                     limit: float | None = None, center: bool = False) -> dict:
    """Everything ``lofw nqm stability`` prints, as a JSON-able dict."""
    A = nqm.update_matrix(H, P, alpha, precondition=precondition)
    radius = nqm.spectral_radius(A)
    verdict = "stable" if radius < 1 - 1e-12 else ("marginally stable" if radius <= 1 + 1e-12 else "unstable")
    lam_p = np.linalg.eigvals(P)
    lam_p = lam_p[np.argsort(lam_p.real)]
    lam_max_h = float(np.linalg.eigvalsh(H)[-1])
    results = {}
    if precondition:
        results["lemma2"] = nqm.check_bounds(P, nqm.lemma2_bounds(H, alpha), "lemma2")
    else:
        results["theorem1"] = nqm.check_bounds(P, nqm.theorem1_bounds(H, alpha), "theorem1")
    bounds = {
        name: {"lower": c.lower, "upper": c.upper, "holds": c.holds, "guaranteed": c.guaranteed}
        for name, c in results.items()
    }
    if d_max is not None:
        entry: dict = {"of": "P~ (P = diag(d) P~, 0 < d_i <= d_max_i)", "d_max": [float(x) for x in d_max]}
        if precondition:
            entry |= {"applicable": False, "reason": "Lemma 3 is stated for the unpreconditioned update (eq. 6)"}
        elif not 0 < alpha < 2 / lam_max_h:
            entry |= {"applicable": False,
                      "reason": f"Lemma 3 assumes 0 < alpha < 2 / lambda_max(H) = {2 / lam_max_h:.6g}"}
        else:
            c = nqm.check_bounds(P, nqm.lemma3_bounds(H, alpha, d_max), "lemma3")
            entry |= {"applicable": True, "lower": c.lower, "upper": c.upper, "holds": c.holds,
                      "guaranteed": c.guaranteed}
        bounds["lemma3"] = entry
    report = {
        "H": H.tolist(),
        "P": P.tolist(),
        "alpha": alpha,
        "precondition": precondition,
        "update_matrix": A.tolist(),
        "equation": "A = I - H^-1/2 (alpha I + P) H (eq. 12)" if precondition else "A = I - (alpha I + P) H (eq. 6)",
        "eigenvalues_A": [_complex(z) for z in nqm.eigenvalues(A)],
        "spectral_radius": radius,
        "stable": radius < 1.0,
        "verdict": verdict,
        "eigenvalues_P": [_complex(z) for z in lam_p],
        "P_symmetric": bool(np.allclose(P, P.T, rtol=0, atol=1e-12)),
        "lambda_max_H": lam_max_h,
        "bounds": bounds,
    }
    if limit is not None or center:
        report["stabilised"] = stabiliser_report(H, P, alpha, precondition, limit, center)
    return report


_NAMES = {"theorem1": "Theorem 1 (eqs. 9-10)", "lemma2": "Lemma 2 (eqs. 9, 13)", "lemma3": "Lemma 3 (eqs. 16-17)"}


def _fmt(z: list[float]) -> str:
    return f"{z[0]:.6g}" if abs(z[1]) < 1e-12 else f"{z[0]:.6g}{z[1]:+.6g}j"


def format_report(r: dict) -> str:
    """The human-readable form of :func:`stability_report`."""
    radius = r["spectral_radius"]
    verdict = r["verdict"]
    lines = [
        f"{r['equation']} with alpha = {r['alpha']:g}",
        f"eigenvalues of A:  {', '.join(_fmt(z) for z in r['eigenvalues_A'])}",
        f"spectral radius:   rho(A) = {radius:.6g}  ({verdict})",
        f"eigenvalues of P:  {', '.join(_fmt(z) for z in r['eigenvalues_P'])}"
        + ("" if r["P_symmetric"] else "  (P is not symmetric)"),
    ]
    for name, b in r["bounds"].items():
        of = "P~" if name == "lemma3" else "P"
        if not b.get("applicable", True):
            lines.append(f"{_NAMES[name]}: not applicable: {b['reason']}")
            continue
        status = "satisfied" if b["holds"] else "violated"
        lines.append(f"{_NAMES[name]}: {b['lower']:.6g} <= lambda({of}) <= {b['upper']:.6g}: {status}")
    checks = [b for b in r["bounds"].values() if b.get("applicable", True)]
    if any(b["holds"] and not b["guaranteed"] for b in checks):
        lines.append("note: the bounds are proven for symmetric P only; for this P they guarantee nothing")
    st = r.get("stabilised")
    if st is not None:
        what = " then ".join(w for w in (
            "centred (I - 1 1^T / n) P" if st["center"] else "",
            f"gain limited to {st['limit']:g} alpha" if st["limit"] is not None else "") if w)
        gain = "" if st["gain_over_alpha"] is None else f", ||P||_2 = {st['gain_over_alpha']:.6g} alpha"
        lines.append(f"stabilised P ({what}{gain}): rho(A) = {st['spectral_radius']:.6g} "
                     f"(was {radius:.6g}); eigenvalues of A: {', '.join(_fmt(z) for z in st['eigenvalues_A'])}")
        if "radius_bound" in st:
            lines.append(f"  any P with ||P||_2 <= {st['limit']:g} alpha: rho(A) <= {st['radius_bound']:.6g}; "
                         "Theorem 1 for every such symmetric P: "
                         + ("guaranteed" if st["symmetric_guarantee"] else
                            "not guaranteed (needs K <= 1 and (1 + K) alpha <= 2 / lambda_max(H))"))
    return "\n".join(lines)


def run_stability(args: argparse.Namespace) -> int:
    H = PAPER_HESSIAN if args.H is None else parse_matrix(args.H, "--H")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12):
        raise ConfigError("--H: must be symmetric")
    if np.linalg.eigvalsh(H)[0] <= 0:
        raise ConfigError(f"--H: must be positive definite; its smallest eigenvalue is {np.linalg.eigvalsh(H)[0]:.6g}")
    n = H.shape[0]
    P = np.zeros((n, n)) if args.P is None else parse_matrix(args.P, "--P", n)
    if not math.isfinite(args.alpha) or args.alpha < 0:
        raise ConfigError(f"--alpha: must be a finite number >= 0 (Theorem 1 assumes alpha >= 0), got {args.alpha}")
    d_max = None if args.d_max is None else parse_d_max(args.d_max)
    if args.limit is not None:
        if not math.isfinite(args.limit) or args.limit <= 0:
            raise ConfigError(f"--limit: must be a finite number > 0 (the gain limit K), got {args.limit}")
        if args.alpha <= 0:
            raise ConfigError("--limit: the gain is limited to K alpha, so it needs --alpha > 0")
    report = stability_report(H, P, float(args.alpha), args.precondition, d_max, args.limit, args.center)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


# --------------------------------------------------------------------------- figures


def run_figures(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out: cannot create folder {str(out)!r}: {e.strerror}") from None
    sizes = dict(figures.FULL_SETTINGS if args.full else figures.DEFAULT_SETTINGS)
    for option, key in (("variance_seeds", "variance_seeds"), ("variance_alphas", "variance_alphas"),
                        ("meta_iterations", "meta_iterations")):
        value = getattr(args, option)
        if value is not None:
            minimum = 2 if option != "meta_iterations" else 1
            if value < minimum:
                raise ConfigError(f"--{option.replace('_', '-')}: must be at least {minimum}, got {value}")
            sizes[key] = value
    if args.only is not None:
        unknown = [x for x in args.only if x not in figures.STUDIES]
        if unknown:
            raise ConfigError(f"--only: unknown studies {unknown}; valid choices: {', '.join(figures.STUDIES)}")
    paths = figures.make_figures(
        out, full=args.full, sizes=sizes, seed=args.seed, convention=args.alpha_convention,
        log=lambda msg: print(msg, file=sys.stderr, flush=True), only=args.only,
    )
    for p in paths:
        print(p)
    return 0
