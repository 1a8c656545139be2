"""Derived numbers of the 100000-step evaluations (README.md here): python stats.py RUNS OUT.json."""
import json
import sys

import numpy as np

from lofw.evaluation.stability import stability

runs, out = sys.argv[1], sys.argv[2]          # runs/digits_100000, the stats file to write
horizons = {"star_stable_mix": 2000, "star_stable": 200, "star": 200}
stats = {}
for name, horizon in horizons.items():
    with np.load(f"{runs}/{name}/curves.npz") as npz:
        for opt in npz.files:
            curves = npz[opt].astype(np.float64)
            s = stability(curves, horizon, float(np.log(10)))
            stats.setdefault(name, {})[opt] = {
                "mean_first_2000": float(curves[:, :2000].mean()),
                "mean_steps_19000_20000": float(curves[:, 19000:20000].mean()),
                "final_last_1000": float(curves[:, -1000:].mean()),
                "worst_ratio_past_horizon": float(s.worst_ratio.max()),
                "stable_runs": int(s.stable.sum()), "runs": int(curves.shape[0]), "horizon": horizon,
            }
json.dump(stats, open(out, "w"), indent=2, sort_keys=True)
