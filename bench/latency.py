"""Scheduler latency: how long ``suggest`` and a report's decision take with a long history behind them.

For each history size (observations = (trial, step) reports) and each scheduler, a synthetic history is
generated on :class:`schedulers.multiscale.synthetic.SyntheticMultiScale` (random configs, sizes drawn
towards the small end, step budgets on a geometric grid, a report every 100 steps, values from the
objective), replayed into a fresh scheduler (timed: that is what the service does after a restart), and
then the scheduler is driven live for ``--rounds`` rounds: one timed ``suggest(1)``, then the new trial's
reports up to its budget, each report's decision timed. Refits that the schedulers schedule on their own
happen inside these timings; nothing is warmed up or excluded.

The flagship is built with ``stop_prob=0`` for the replay only in the sense that a generated history must
not contain reports after a STOP the scheduler would have issued; the stop rule's probability is still
computed at every report, so the decision cost is the same.

Run: ``OMP_NUM_THREADS=1 python -m bench.latency`` (``--sizes 100 1000 10000 --rounds 20``); prints a
markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from schedulers.base import Decision, EventKind, Scheduler
from schedulers.multiscale.synthetic import SyntheticMultiScale
from schedulers.registry import make_scheduler, scheduler_names

DEFAULT_SCHEDULERS = ("multiscale_bo", "gp_target", "random")
#: options that keep a generated history consistent with the scheduler's own decisions (see above)
REPLAY_OPTIONS: dict[str, dict[str, Any]] = {"multiscale_bo": {"stop_prob": 0.0}}


def synthetic_history(objective: SyntheticMultiScale, n_observations: int, seed: int = 0) -> list[dict]:
    """An event history with ``n_observations`` reports: SUGGEST, REPORTs every 100 steps, COMPLETE."""
    problem = objective.problem()
    rng = np.random.default_rng(seed)
    sizes = [s.name for s in problem.ladder.sizes]
    size_weights = np.array([2.0 ** -i for i in range(len(sizes))])
    size_weights /= size_weights.sum()
    every = problem.ladder.report_every
    budgets = [b for b in (100, 200, 400, 800, 1600, 3200) if b <= problem.ladder.max_steps]
    events: list[dict] = []
    n, trial_id = 0, 0
    while n < n_observations:
        params = problem.space.sample(rng, 1)[0]
        size = sizes[int(rng.choice(len(sizes), p=size_weights))]
        steps = int(budgets[int(rng.integers(len(budgets)))])
        events.append({"kind": EventKind.SUGGEST.value, "trial_id": trial_id, "params": params, "size": size,
                       "steps": steps, "replicate": 0})
        for step in range(every, steps + 1, every):
            value = objective(params, step, size)
            events.append({"kind": EventKind.REPORT.value, "trial_id": trial_id, "step": step,
                           "value": value})
            n += 1
            if not np.isfinite(value) or n >= n_observations:
                break
        if np.isfinite(value):
            events.append({"kind": EventKind.COMPLETE.value, "trial_id": trial_id})
        trial_id += 1
    return events


def measure(name: str, objective: SyntheticMultiScale, events: list[dict], rounds: int) -> dict[str, float]:
    """Replay ``events`` into a fresh ``name`` scheduler, then time ``rounds`` live suggest/report rounds."""
    problem = objective.problem()
    scheduler: Scheduler = make_scheduler(name, problem, seed=0, **REPLAY_OPTIONS.get(name, {}))
    t0 = time.perf_counter()
    scheduler.replay(events)
    replay_s = time.perf_counter() - t0
    every = problem.ladder.report_every
    suggest_ms, decide_ms = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        batch = scheduler.suggest(1)
        suggest_ms.append(1e3 * (time.perf_counter() - t0))
        if not batch:
            continue
        s = batch[0]
        step = s.start_step
        while step < s.steps:
            step = min(step + every, s.steps)
            value = objective(s.params, step, s.size)
            t0 = time.perf_counter()
            decision = scheduler.report(s.trial_id, step, value)
            decide_ms.append(1e3 * (time.perf_counter() - t0))
            if decision is not Decision.CONTINUE:
                break
        if not scheduler.trial(s.trial_id).state.is_final:
            scheduler.complete(s.trial_id)
    return {"replay_s": replay_s,
            "suggest_p50": float(np.percentile(suggest_ms, 50)), "suggest_p95": float(np.percentile(suggest_ms, 95)),
            "decide_p50": float(np.percentile(decide_ms, 50)) if decide_ms else float("nan"),
            "decide_p95": float(np.percentile(decide_ms, 95)) if decide_ms else float("nan"),
            "n_decisions": float(len(decide_ms))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000],
                        help="history sizes in observations (reports)")
    parser.add_argument("--schedulers", nargs="+", default=list(DEFAULT_SCHEDULERS))
    parser.add_argument("--rounds", type=int, default=20, help="timed suggest rounds per cell")
    args = parser.parse_args(argv)
    names = [n for n in args.schedulers if n in scheduler_names()]
    objective = SyntheticMultiScale()
    rows = ["| scheduler | observations | replay (s) | suggest p50 (ms) | suggest p95 (ms) | decision p50 (ms) "
            "| decision p95 (ms) | decisions timed |", "|---|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        events = synthetic_history(objective, size)
        for name in names:
            r = measure(name, objective, events, args.rounds)
            rows.append(f"| {name} | {size:,} | {r['replay_s']:.1f} | {r['suggest_p50']:.1f} | "
                        f"{r['suggest_p95']:.1f} | {r['decide_p50']:.2f} | {r['decide_p95']:.2f} | "
                        f"{int(r['n_decisions'])} |")
            print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
