"""Command line: ``python -m bench run --problem datamix --strategies all --seeds 10 --workers 4 [--budget 10]``.

Without ``--budget`` a run gets :func:`bench.harness.runner.default_budget`: 10 target runs on a problem
with several model sizes, 30 full-fidelity runs on a single-size one (LCBench).

``run`` writes ``results.jsonl`` (one raw record per strategy x seed), ``summary.md`` and
``regret_<problem>.png`` into ``--out`` (default ``bench/results/<problem>-<UTC time>``, git-ignored).
``--quick`` is the CI mode: 2 seeds, budget 0.3, 2 workers, a coarse cost grid, at most 6 trials per run
(so the slowest model-based peers finish in seconds) and, unless ``--strategies`` says otherwise, two
strategies (random search and the flagship, or the first other registered scheduler). ``report RUN_DIR [RUN_DIR ...] --out DIR`` tabulates and plots the merged raw
records of several runs on the same problem (e.g. cheap strategies with 10 seeds, expensive ones with 3).
``list`` prints the problems and strategies. ``suite [--quick] [--jobs N]`` runs every problem x strategy and
regenerates the results section of ``bench/README.md`` (:mod:`bench.suite`; ``--quick`` is CI's variant and
never writes the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path

from bench.harness.runner import BenchmarkConfig, load_results, run_benchmark
from bench.harness.strategies import UnknownStrategyError, expand, load_strategy, peer_paths, strategy_names
from bench.problems import ProblemError, problem_names
from bench.report import write_report
from bench.suite import QUICK, SuiteError

FLAGSHIP = "multiscale_bo"


class OptionsError(ValueError):
    """A malformed ``--options`` value (a usage error)."""


def _quick_default_strategies() -> list[str]:
    names = strategy_names()
    second = FLAGSHIP if FLAGSHIP in names else next((n for n in names if n != "random"), None)
    return ["random"] + ([second] if second else [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="ScaleLadder tuning-quality benchmark")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run strategies x seeds on one problem")
    run.add_argument("--problem", required=True,
                     help=f"built-in ({', '.join(problem_names())}, lcbench:<task id>) or module:attribute")
    run.add_argument("--strategies", default=None, help="comma-separated names, or 'all' (default: all)")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default 10)")
    run.add_argument("--seed-offset", type=int, default=0, help="first seed")
    run.add_argument("--workers", type=int, default=None, help="simulated workers (default 4)")
    run.add_argument("--budget", type=float, default=None, help="budget in target-scale runs (default: 10 with several model sizes, 30 full-fidelity "
                          "runs with one)")
    run.add_argument("--data", default=None, help="benchmark data folder (default $SCALELADDER_BENCHDATA)")
    run.add_argument("--out", default=None, help="output folder")
    run.add_argument("--jobs", type=int, default=1, help="parallel processes over runs (default 1)")
    run.add_argument("--checkpoints", type=int, default=None, help="cost checkpoints per run (default 50)")
    run.add_argument("--max-trials", type=int, default=None,
                     help="stop suggesting after this many trials (default: no limit; 6 with --quick)")
    run.add_argument("--options", default=None,
                     help='JSON object of constructor options per strategy, e.g. '
                          '\'{"multiscale_bo": {"cost_power": 0.5}}\' (recorded with each run)')
    run.add_argument("--quick", action="store_true", help="CI mode: few seeds, tiny budget, 2 strategies")
    rep = sub.add_parser("report", help="tabulate and plot the merged results of runs on one problem")
    rep.add_argument("runs", nargs="+", help="run folders (or results.jsonl files)")
    rep.add_argument("--out", required=True, help="output folder for summary.md and the plot")
    rep.add_argument("--reference", default=FLAGSHIP,
                     help=f"strategy the speed-up table divides by (default {FLAGSHIP})")
    rep.add_argument("--strategies", default=None,
                     help="comma-separated strategy names to keep (default: every strategy in the runs)")
    rep.add_argument("--tags", default=None,
                     help="comma-separated tag per run folder (e.g. 'before,after'): the same strategy from "
                          "differently tagged runs is tabulated and paired as separate rows 'NAME [TAG]'")
    suite = sub.add_parser("suite", help="every problem x strategy; regenerates bench/README.md's results")
    suite.add_argument("--quick", action="store_true",
                       help="CI variant: 2 seeds, budget 0.3, <= 6 trials, one LCBench task; never writes the README")
    suite.add_argument("--jobs", type=int, default=1, help="parallel processes over runs (default 1)")
    suite.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 10; 2 with --quick)")
    suite.add_argument("--workers", type=int, default=None, help="simulated workers (default 4; 2 with --quick)")
    suite.add_argument("--problems", default=None, help="comma-separated problems (default: all built-in)")
    suite.add_argument("--strategies", default=None, help="comma-separated names or 'all' (default all)")
    suite.add_argument("--data", default=None, help="benchmark data folder (default $SCALELADDER_BENCHDATA)")
    suite.add_argument("--out", default=None, help="output folder (default bench/results/suite-<UTC time>)")
    suite.add_argument("--readme", default="bench/README.md",
                       help="README whose generated section is replaced (default bench/README.md)")
    suite.add_argument("--no-readme", action="store_true", help="do not touch the README")
    suite.add_argument("--estimate", action="store_true", help="print the plan and time estimate, run nothing")
    suite.add_argument("--render", default=None, metavar="OUT",
                       help="run nothing: regenerate the README section from a finished suite's folder OUT")
    sub.add_parser("list", help="list problems and strategies")
    return parser


def _suite(args: argparse.Namespace, argv: list[str]) -> int:
    import bench.suite as suite_mod

    if args.render:
        out = Path(args.render)
        result, p, command = suite_mod.load_suite(out)
        suite_mod.update_readme(result, p, Path(args.readme), command, out)
        print(f"regenerated the results section of {args.readme} from {out} "
              f"({len(p.problems)} problems, {len(p.strategies)} strategies)")
        return 0
    p = suite_mod.plan(quick=args.quick, seeds=args.seeds, jobs=args.jobs, workers=args.workers,
                       problems=[x.strip() for x in args.problems.split(",")] if args.problems else None,
                       strategies=expand(args.strategies) if args.strategies else None, data_dir=args.data)
    print(f"suite: {len(p.problems)} problems x {len(p.strategies)} strategies x {len(p.seeds)} seeds, "
          f"{p.workers} workers, jobs {p.jobs}{' (quick)' if p.quick else ''}", flush=True)
    print(suite_mod.estimate(p).line(), flush=True)
    if args.estimate:
        return 0
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = Path(args.out) if args.out else Path("bench/results") / f"suite{'-quick' if p.quick else ''}-{stamp}"
    command = "python -m bench " + " ".join(shlex.quote(a) for a in argv)
    result = suite_mod.run_suite(p, out, progress=lambda m: print(m, flush=True), command=command)
    if not p.quick and not args.no_readme:
        suite_mod.update_readme(result, p, Path(args.readme), command, out)
        print(f"regenerated the results section of {args.readme}")
    bad = {(pr, r["strategy"], r["seed"]): suite_mod.well_formed(r)
           for pr, res in result.results.items() for r in res.records}
    bad = {k: v for k, v in bad.items() if v}
    for (pr, st, seed), why in bad.items():
        print(f"run {pr} / {st} / seed {seed}: {'; '.join(why)}")
    for pr, err in result.errors.items():
        print(f"problem {pr} did not run: {err}")
    print(f"suite done in {result.wall_s:.0f} s; results in {out}")
    return 0 if not bad and not result.errors else 1


def _list() -> int:
    print("problems:", ", ".join(problem_names()), "(and lcbench:<task id>, module:attribute)")
    for name in strategy_names():
        s = load_strategy(name)
        print(f"  {name:<20} {s.origin.value:<9} {s.path}" + ("" if s.available else f"  UNAVAILABLE: {s.error}"))
    _, err = peer_paths()
    if err:
        print(f"bench.peers failed to import: {err}")
    return 0


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    q = args.quick
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if q else 10)
    strategies = expand(args.strategies) if args.strategies else (_quick_default_strategies() if q
                                                                   else strategy_names())
    try:
        options = json.loads(args.options) if args.options else {}
    except json.JSONDecodeError as e:
        raise OptionsError(f"--options is not valid JSON: {e}") from None
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise OptionsError('--options must be a JSON object {"strategy": {"option": value}}')
    unknown = sorted(set(options) - set(strategies))
    if unknown:
        raise OptionsError(f"--options names strategies not in this run: {unknown}")
    config = BenchmarkConfig(
        problem=args.problem, strategies=strategies,
        seeds=list(range(args.seed_offset, args.seed_offset + seeds)),
        workers=args.workers if args.workers is not None else (QUICK["workers"] if q else 4),
        budget=args.budget if args.budget is not None else (QUICK["budget"] if q else None),
        data_dir=args.data, jobs=args.jobs,
        n_checkpoints=args.checkpoints if args.checkpoints is not None else (QUICK["checkpoints"] if q else 50),
        max_trials=args.max_trials if args.max_trials is not None else (QUICK["max_trials"] if q else None),
        options=options)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = Path(args.out) if args.out else Path("bench/results") / f"{args.problem.replace(':', '_')}-{stamp}"
    result = run_benchmark(config, out, progress=lambda m: print(m, flush=True))
    md, png = write_report(result, out, "python -m bench " + " ".join(shlex.quote(a) for a in argv))
    print(md.read_text())
    print(f"raw results: {out / 'results.jsonl'}; summary: {md}; plot: {png}")
    return 0 if all(not r.get("error") for r in result.records) and not result.unavailable else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "suite":
            return _suite(args, argv)
        if args.command == "report":
            try:
                result = load_results(args.runs, args.tags.split(",") if args.tags is not None else None,
                                      expand(args.strategies) if args.strategies else None)
            except (OSError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            md, _ = write_report(result, args.out, "python -m bench " + " ".join(shlex.quote(a) for a in argv),
                                 reference=args.reference)
            print(md.read_text())
            return 0
        return _run(args, argv)
    except (ProblemError, UnknownStrategyError, OptionsError, SuiteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
