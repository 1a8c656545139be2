"""Cost of one PyTorch training step under ``lofw.torch``, relative to ``torch.optim.Adam``.

The harness of ``benchmarks/step_overhead.py`` in PyTorch: the 784-128-128-10
ReLU MLP at batch 128, uniform inputs and random labels generated before
timing, ``steps`` steps of forward, backward, ``step()`` and ``zero_grad()``;
each optimizer runs once to warm up, then ``repeats`` times; the median is
reported as milliseconds per step and as a ratio to ``torch.optim.Adam``
measured in the same process (the number to read on a shared machine; the
1-minute load average is printed). ``--step-only`` times ``opt.step()``
alone, with fixed gradients, as a second ratio.

Run::

    python benchmarks/torch_step.py [NAME ...] [--steps 100] [--repeats 5] [--threads N] [--json]

NAME: a shipped optimizer (default ``star star_stable hyperparam``) or a portable file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

import lofw.torch

SIZES = (784, 128, 128, 10)
BATCH = 128
DEFAULT = ("star", "star_stable", "hyperparam")


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def time_training(make_opt, batches, repeats: int) -> float:
    """Median seconds per training step."""
    model = make_model()
    opt = make_opt(model.parameters())
    xs, ys = batches

    def run():
        for x, y in zip(xs, ys):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()

    run()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) / len(xs))
    return statistics.median(times)


def time_step(make_opt, steps: int, repeats: int) -> float:
    """Median seconds of ``opt.step()`` alone, gradients fixed."""
    model = make_model()
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-2
    opt = make_opt(model.parameters())
    opt.step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.step()
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DEFAULT))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    batches = (torch.rand(args.steps, BATCH, SIZES[0], generator=g),
               torch.randint(0, SIZES[-1], (args.steps, BATCH), generator=g))
    load_before = os.getloadavg()[0]
    optimizers = {"adam": lambda p: torch.optim.Adam(p, lr=1e-3)}
    optimizers.update({n: (lambda p, n=n: lofw.torch.LearnedOptimizer(p, n)) for n in args.names})
    rows = {}
    for name, make in optimizers.items():
        rows[name] = {"ms_per_step": time_training(make, batches, args.repeats) * 1e3,
                      "step_only_ms": time_step(make, args.steps, args.repeats) * 1e3}
    for row in rows.values():
        row["ratio"] = row["ms_per_step"] / rows["adam"]["ms_per_step"]
        row["step_only_ratio"] = row["step_only_ms"] / rows["adam"]["step_only_ms"]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "repeats": args.repeats,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "optimizers": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in rows.items()},
    }
    if args.json:
        print(json.dumps(result))
        return result
    print(f"torch {result['torch']} ({result['threads']} threads), {args.steps} steps x {args.repeats} repeats, "
          f"load average (1 min) {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"{'optimizer':<14} {'ms/step':>8} {'/ adam':>7} {'step ms':>8} {'/ adam':>7}")
    for name, row in rows.items():
        print(f"{name:<14} {row['ms_per_step']:8.3f} {row['ratio']:7.2f} {row['step_only_ms']:8.3f} "
              f"{row['step_only_ratio']:7.2f}")
    return result


if __name__ == "__main__":
    main()
