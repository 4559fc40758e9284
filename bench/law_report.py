"""``python -m bench.law_report --data DIR [--seeds 10] [--budget 10]``: the hyperparameter law that the
``law_transfer`` baseline fitted on the cheap Step Law cells it paid for, per seed, next to the published
law, as a markdown table for bench/README.md ("Scaling laws").

Each seed is one harness run (:class:`bench.harness.cluster.SimulatedCluster`, 4 workers, the given
budget in target runs); the law shown is the one the baseline used for its target runs, and the regret is
that of its final recommendation."""

from __future__ import annotations

import argparse
import copy
import sys

from bench.baselines.law_transfer import LawTransfer
from bench.harness.cluster import SimulatedCluster, cost_checkpoints
from bench.problems import make_problem
from schedulers.scaling.steplaw_check import PUBLISHED


def _fmt(exponents: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:+.3f}" for k, v in exponents.items()) or "-"


def rows(data_dir: str | None, seeds: range, budget: float, workers: int = 4) -> list[str]:
    bench = make_problem("steplaw", data_dir)
    out = []
    for seed in seeds:
        problem = copy.deepcopy(bench.problem)
        problem.budget = budget
        baseline = LawTransfer(problem, seed=seed)
        result = SimulatedCluster(bench, baseline, workers=workers, budget=budget, seed=seed,
                                  checkpoints=cost_checkpoints(budget)).run()
        law = baseline.fitted_law()
        cells = sorted({size for size, _ in law.cells})
        out.append(f"| {seed} | {law.source.value} | {_fmt(law.lr_exponents)} | {_fmt(law.bs_exponents)} | "
                   f"{len(law.cells)} ({', '.join(cells)}; D <= {max(s for _, s in law.cells)} steps) | "
                   f"{law.prediction.get('lr', float('nan')):.3g} | {law.prediction.get('bs', float('nan')):.3g} | "
                   f"{result.final_regret:.3g} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.law_report", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="benchmark data folder (default $SCALELADDER_BENCHDATA)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=float, default=10.0)
    a = ap.parse_args(argv)
    lr_c, lr_e = PUBLISHED["lr"]
    bs_c, bs_e = PUBLISHED["bs"]
    print(f"Command: `python -m bench.law_report --seeds {a.seeds} --budget {a.budget:g}` (data: the Step Law "
          f"table). Published law (Li et al. 2025): lr {_fmt(lr_e)}; bs {_fmt(bs_e)} (D in tokens).\n")
    print("| seed | form fitted | lr exponents | bs exponents | cells used | predicted lr | predicted bs | "
          "final regret % |")
    print("|---|---|---|---|---|---|---|---|")
    for line in rows(a.data, range(a.seeds), a.budget):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
