"""Online data mixing against static mixtures on the built-in muP transformer (issue 17).

At equal training compute (the same steps, batch size and evaluation for every arm) and the same learning
rate, the validation loss (nats per token on the uniform evaluation mixture) of the muP transformer at each
width with:

(a) ``uniform``: the uniform mixture, static;
(b) ``static``: the best static mixture the flagship (``multiscale_bo``) finds, tuning the mixture alone
    across the widths (target: the largest width at the full steps) within ``--flagship-budget`` target runs;
(c) ``<policy>@uniform``: each online policy started from the uniform mixture;
(d) ``<policy>@static``: each online policy started from (b).

Trials run in this process, one after the other, through the same workload function the Ray trainable
calls (:func:`workers.workloads.lm.mup_transformer`); the policies are those of ``schedulers/adaptive``
with their default hyperparameters (``--variants`` adds arms with other options). Writes ``results.jsonl`` (one record per width x arm x seed, with its
curve and every mixture sent), ``summary.md`` (the tables) and ``mixture.png`` (how the mixture moves
during a run) into ``--out``::

    python -m bench.online --widths 32,64 --steps 200 --seeds 3 --out bench/results/online
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from schedulers import Decision, Problem, make_scheduler
from schedulers.adaptive import PolicyKind, make_policy
from workers.errors import TrialStopped
from workers.workloads.corpus import DEFAULT_DOMAINS
from workers.workloads.lm import mup_transformer

DOMAINS = tuple(DEFAULT_DOMAINS)
UNIFORM = {d: 1.0 / len(DOMAINS) for d in DOMAINS}


@dataclass
class RunResult:
    width: int
    arm: str
    seed: int
    final: float
    curve: list[tuple[int, float]]
    domains: list[dict[str, float]]
    sent: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    seconds: float = 0.0


def train(width: int, steps: int, report_every: int, lr: float, seed: int, mixture: Mapping[str, float],
          policy=None, args: Mapping[str, Any] | None = None) -> tuple[list, list, list]:
    """One full training run; with ``policy``, the mixture follows its answers. Returns the curve, the
    per-domain losses and the mixtures sent."""
    curve, doms = [], []
    sent = [(0, dict(mixture))]
    if policy is not None:
        policy.start(0, mixture)

    def reporter(step, value, state=None, *, domains=None):
        curve.append((int(step), float(value)))
        doms.append(dict(domains or {}))
        if policy is None or not domains:
            return None
        answer = policy.observe(0, step, domains)
        sent.append((int(step), answer))
        return answer

    mup_transformer({"params": {"lr": lr, **mixture}, "size": f"w{width}", "steps": steps,
                     "report_every": report_every, "seed": seed, "size_extra": {"width": width},
                     "args": dict(args or {})}, reporter)
    return curve, doms, sent


def tune_static_mixture(widths: Sequence[int], steps: int, report_every: int, lr: float, budget: float,
                        seed: int = 0, args: Mapping[str, Any] | None = None,
                        log: Callable[[str], None] = print) -> tuple[dict[str, float], dict[str, Any]]:
    """The flagship tunes the mixture alone (lr fixed) across ``widths``; runs its trials here, one at a
    time, PAUSEd trials resumed from their in-memory checkpoints. Returns the recommended mixture."""
    sizes = [{"name": f"w{w}", "params": 12 * 2 * w * w, "extra": {"width": w}} for w in sorted(widths)]
    problem = Problem.from_dict({
        "space": [{"name": "mix", "type": "mixture", "components": list(DOMAINS)}],
        "fidelity": {"steps": {"min": max(report_every, steps // 8), "max": steps, "report_every": report_every},
                     "sizes": sizes},
        "target": {"steps": steps, "size": sizes[-1]["name"]}, "cost": {"kind": "analytic"},
        "direction": "minimize", "budget": {"max_cost": budget}})
    sched = make_scheduler("multiscale_bo", problem, seed=seed)
    checkpoints: dict[int, dict] = {}
    started = time.time()
    while sched.cost_spent < budget * problem.target_cost:
        s = sched.resume() or (sched.suggest(1) or [None])[0]
        if s is None:
            break
        width = problem.ladder.size(s.size).extra["width"]

        def reporter(step, value, state=None, *, domains=None, _id=s.trial_id):
            if state is not None:
                checkpoints[_id] = copy.deepcopy(state)
            if sched.report(_id, step, value) is not Decision.CONTINUE:
                raise TrialStopped("the flagship ended the segment")
            return None

        try:
            mup_transformer({"params": {"lr": lr, **s.params}, "size": s.size, "steps": s.steps,
                             "start_step": s.start_step, "report_every": report_every, "seed": seed,
                             "size_extra": {"width": width}, "args": dict(args or {}),
                             "checkpoint": checkpoints.get(s.trial_id) if s.start_step else None}, reporter)
        except TrialStopped:
            pass
        sched.complete(s.trial_id)
        log(f"  flagship trial {s.trial_id} w{width} {s.start_step}->{s.steps}: cost "
            f"{sched.cost_spent / problem.target_cost:.2f}/{budget} target runs ({time.time() - started:.0f} s)")
    rec = sched.recommend()
    mixture = {d: float(rec.params[d]) for d in DOMAINS}
    return mixture, {"trials": len(sched.trials), "cost": sched.cost_spent / problem.target_cost,
                     "predicted": rec.predicted, "std": rec.std, "seconds": time.time() - started}


Arm = tuple[dict[str, float], PolicyKind | None, dict[str, float]]


def arms(static: Mapping[str, float], variants: Sequence[Mapping[str, Any]] = ()) -> dict[str, Arm]:
    """(a)-(d), and per variant ``{"policy": ..., "options": {...}}`` the policy with those options from
    both starts (named ``policy[k=v]@uniform``)."""
    out: dict[str, Arm] = {"uniform": (dict(UNIFORM), None, {}), "static": (dict(static), None, {})}
    policies = [(kind.value, kind, {}) for kind in PolicyKind]
    for v in variants:
        opts = {k: float(x) for k, x in dict(v.get("options") or {}).items()}
        label = ",".join(f"{k}={x:g}" for k, x in opts.items())
        policies.append((f"{PolicyKind(v['policy']).value}[{label}]", PolicyKind(v["policy"]), opts))
    for name, kind, opts in policies:
        out[f"{name}@uniform"] = (dict(UNIFORM), kind, opts)
        out[f"{name}@static"] = (dict(static), kind, opts)
    return out


def summarise(results: Sequence[RunResult], order: Sequence[str]) -> str:
    """Mean final loss per width x arm over seeds, and the paired difference to ``uniform``."""
    lines = []
    for width in sorted({r.width for r in results}):
        by = {(r.arm, r.seed): r.final for r in results if r.width == width}
        seeds = sorted({s for _, s in by})
        lines += [f"Width {width} ({len(seeds)} seeds; final validation loss, nats per token, lower is better):", "",
                  "| arm | mean | std | paired diff. vs uniform | arm better in | last mixture trained on (seed 0: code / math / prose) |",
                  "|---|---|---|---|---|---|"]
        for arm in order:
            vals = np.array([by[(arm, s)] for s in seeds if (arm, s) in by])
            if not vals.size:
                continue
            diff = vals - np.array([by[("uniform", s)] for s in seeds if (arm, s) in by])
            wins = int((diff < 0).sum())
            r0 = next(r for r in results if r.width == width and r.arm == arm and r.seed == seeds[0])
            last = r0.sent[-2][1] if len(r0.sent) > 1 else r0.sent[-1][1]  # the answer to the last report trains nothing
            mix = " / ".join(f"{last.get(d, float('nan')):.3f}" for d in DOMAINS)
            sd = f"{vals.std(ddof=1):.4f}" if vals.size > 1 else "-"
            d = "-" if arm == "uniform" else f"{diff.mean():+.4f} ± {diff.std(ddof=1) if diff.size > 1 else 0:.4f}"
            lines.append(f"| {arm} | {vals.mean():.4f} | {sd} | {d} | {'-' if arm == 'uniform' else f'{wins}/{diff.size}'}"
                         f" | {mix} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: Sequence[RunResult], path: Path, width: int, seed: int = 0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    online = [r for r in results if r.width == width and r.seed == seed and "@" in r.arm]
    fig, axes = plt.subplots(1, len(online), figsize=(3.2 * len(online), 3.0), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], online):
        steps = [s for s, _ in r.sent]
        for d in DOMAINS:
            ax.plot(steps, [m[d] for _, m in r.sent], marker=".", label=d)
        ax.set_title(r.arm, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("mixture weight")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"Mixture during a run: muP transformer, width {width}, seed {seed}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.online", description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="32,64")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--report-every", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--flagship-budget", type=float, default=3.0, help="target runs for (b)")
    p.add_argument("--static", default=None, help="skip the flagship: (b) as code,math,prose weights")
    p.add_argument("--args", default="{}", help="workload args as JSON (e.g. a smaller model for a smoke run)")
    p.add_argument("--variants", default="[]",
                   help='more policy arms as JSON, e.g. \'[{"policy": "exp3", "options": {"lr": 30}}]\'')
    p.add_argument("--out", default="bench/results/online")
    a = p.parse_args(argv)
    widths = [int(w) for w in a.widths.split(",")]
    wargs = json.loads(a.args)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.online " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if a.static:
        w = [float(x) for x in a.static.split(",")]
        static, flagship = {d: x / sum(w) for d, x in zip(DOMAINS, w)}, {"given": True}
    else:
        log(f"(b) the flagship tunes the static mixture within {a.flagship_budget} target runs")
        static, flagship = tune_static_mixture(widths, a.steps, a.report_every, a.lr, a.flagship_budget,
                                               args=wargs, log=log)
    log(f"static mixture: {static} ({flagship})")
    table = arms(static, json.loads(a.variants))
    results: list[RunResult] = []
    with open(out / "results.jsonl", "w") as fh:
        for width in widths:
            for seed in range(a.seeds):
                for arm, (mixture, kind, options) in table.items():
                    started = time.time()
                    policy = make_policy(kind, DOMAINS, seed=seed, **options) if kind is not None else None
                    curve, doms, sent = train(width, a.steps, a.report_every, a.lr, seed, mixture, policy, wargs)
                    r = RunResult(width, arm, seed, curve[-1][1], curve, doms, sent, time.time() - started)
                    results.append(r)
                    fh.write(json.dumps(r.__dict__) + "\n")
                    fh.flush()
                    log(f"w{width} seed {seed} {arm}: {r.final:.4f} ({r.seconds:.0f} s)")
    summary = summarise(results, list(table))
    fmt = lambda m: " / ".join(f"{m[d]:.3f}" for d in DOMAINS)  # noqa: E731
    header = (f"Command: `{command}`\n\nSteps {a.steps}, reports every {a.report_every}, lr {a.lr}, batch and model "
              f"as the workload's defaults{' with ' + json.dumps(wargs) if wargs else ''}; evaluation on the uniform "
              f"mixture. (b) static mixture (code / math / prose): {fmt(static)}; flagship: {json.dumps(flagship)}.\n")
    (out / "summary.md").write_text(header + "\n" + summary)
    plot(results, out / "mixture.png", max(widths))
    print(header + "\n" + summary)
    return 0
