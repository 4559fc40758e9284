"""Runs a benchmark: every (strategy, seed) pair through :class:`SimulatedCluster`, raw results to JSON lines.

Each run gets a fresh deep copy of the problem's :class:`schedulers.Problem` (a strategy may mutate its
cost model) and a fresh scheduler built as ``cls(problem, seed=seed)``. Runs are independent, so they may
go to ``jobs`` processes; each process builds the benchmark problem once (and its best known target value
once). A strategy that fails to load is recorded with its exact error and not run; a run that crashes is
recorded with its error and traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from bench.harness.cluster import SimulatedCluster, cost_checkpoints
from bench.harness.strategies import Strategy, load_strategy, strategy_names
from bench.metrics import strategy_label
from bench.problems import BenchmarkProblem, make_problem
from bench.problems.base import RegretUnit
from schedulers.errors import InvalidProblemError

_PROBLEMS: dict[tuple[str, str | None], BenchmarkProblem] = {}


class ProblemScale(str, enum.Enum):
    """Whether a problem has a model-size ladder (its budget unit is one run at the target size) or one
    size (its unit is one full-fidelity run)."""

    MULTI = "multi-scale"
    SINGLE = "single-scale"


#: default budget per kind of problem, in target (full-fidelity) runs: enough for a multi-scale strategy to
#: reach 0.25% and show whether it holds there; single-scale problems at the tens of full-fidelity runs
#: the multi-fidelity literature reports LCBench at
DEFAULT_BUDGETS: dict[ProblemScale, float] = {ProblemScale.MULTI: 10.0, ProblemScale.SINGLE: 30.0}


def problem_scale(bench: BenchmarkProblem) -> ProblemScale:
    return ProblemScale.MULTI if len(bench.problem.ladder.sizes) > 1 else ProblemScale.SINGLE


def default_budget(bench: BenchmarkProblem) -> float:
    """The budget a run gets when none is given: :data:`DEFAULT_BUDGETS` for the problem's scale."""
    return DEFAULT_BUDGETS[problem_scale(bench)]


@dataclass
class BenchmarkConfig:
    """What to run. ``seeds`` are the seed values themselves; ``budget`` is in target-run units (``None``:
    :func:`default_budget` of the problem, resolved by :func:`run_benchmark`)."""

    problem: str
    strategies: list[str]
    seeds: list[int]
    workers: int = 4
    budget: float | None = None
    data_dir: str | None = None
    jobs: int = 1
    n_checkpoints: int = 50
    max_trials: int | None = None   # CI quick mode only: stop suggesting after this many trials
    #: strategy name -> keyword options for its constructor (e.g. {"multiscale_bo": {"cost_power": 0.5}})
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    problem_name: str
    problem_description: str
    best_target_value: float
    records: list[dict[str, Any]]
    unavailable: dict[str, str] = field(default_factory=dict)   # strategy -> exact load error
    wall_s: float = 0.0
    regret_unit: RegretUnit = RegretUnit.RELATIVE_PERCENT
    #: strategy -> why it does not apply to this problem (its constructor's InvalidProblemError, e.g. a
    #: learning-rate law on a space without a learning rate): not run, and not a failure
    not_applicable: dict[str, str] = field(default_factory=dict)


def problem_for(spec: str, data_dir: str | None) -> BenchmarkProblem:
    """The process's one instance of a problem (its best-known value is then computed once)."""
    key = (spec, data_dir)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = make_problem(spec, data_dir)
    return _PROBLEMS[key]


def _problem_fields(bench: BenchmarkProblem) -> dict[str, Any]:
    """What a record says about its problem, so a report can describe a run without rebuilding the
    problem (a plug-in problem may not resolve by its name)."""
    return {"problem_description": bench.describe(), "best_target_value": bench.best_target_value,
            "regret_unit": bench.regret_unit.value}


def run_one(problem_spec: str, data_dir: str | None, strategy: str, seed: int, workers: int, budget: float,
            n_checkpoints: int, max_trials: int | None = None,
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One (strategy, seed) run -> its raw record (JSON-able). ``options`` go to the strategy's
    constructor and into the record."""
    bench = problem_for(problem_spec, data_dir)
    loaded = load_strategy(strategy)
    options = dict(options or {})
    record: dict[str, Any] = {"problem": bench.name, **_problem_fields(bench), "strategy": strategy,
                              "origin": loaded.origin.value, "seed": seed, "workers": workers, "budget": budget,
                              "max_trials": max_trials, "options": options}
    if loaded.cls is None:
        return {**record, "error": loaded.error}
    t0 = time.perf_counter()
    try:
        problem = copy.deepcopy(bench.problem)
        problem.budget = budget  # as the service tells a study's scheduler its budget.max_cost
        scheduler = loaded.cls(problem, seed=seed, **options)
    except Exception as e:  # noqa: BLE001 - recorded, the benchmark goes on
        return {**record, "error": f"{type(e).__name__}: {e}", "wall_s": time.perf_counter() - t0}
    cluster = SimulatedCluster(bench, scheduler, workers=workers, budget=budget, seed=seed,
                               checkpoints=cost_checkpoints(budget, n_checkpoints), max_trials=max_trials)
    result = cluster.run()
    return {**record, **asdict(result), "wall_s": time.perf_counter() - t0}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return obj


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Run every (strategy, seed) of ``config``; append each record to ``out_dir/results.jsonl`` as it
    finishes (so an interrupted run keeps what it did)."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    bench = problem_for(config.problem, config.data_dir)
    if config.budget is None:
        config = dataclasses.replace(config, budget=default_budget(bench))
    best = bench.best_target_value
    strategies: list[Strategy] = [load_strategy(n) for n in config.strategies]
    unavailable = {s.name: s.error or "" for s in strategies if not s.available}
    for name, err in unavailable.items():
        say(f"strategy {name!r} unavailable: {err}")
    not_applicable = {s.name: why for s in strategies if s.available
                      and (why := _not_applicable(s, bench, config.budget)) is not None}
    for name, why in not_applicable.items():
        say(f"strategy {name!r} does not apply to {bench.name}: {why}")
    runnable = [s for s in strategies if s.available and s.name not in not_applicable]
    jobs = [(config.problem, config.data_dir, s.name, seed, config.workers, config.budget, config.n_checkpoints,
             config.max_trials, config.options.get(s.name)) for s in runnable for seed in config.seeds]
    sink = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        sink = (Path(out_dir) / "results.jsonl").open("w")
    records: list[dict[str, Any]] = []
    if sink is not None:  # unavailable strategies are part of the raw results too, with their exact error
        for name, err in unavailable.items():
            s = next(s for s in strategies if s.name == name)
            sink.write(json.dumps({"problem": bench.name, **_problem_fields(bench), "strategy": name, "origin": s.origin.value, "seed": None,
                                   "workers": config.workers, "budget": config.budget, "unavailable": True,
                                   "error": err}) + "\n")
        for name, why in not_applicable.items():
            s = next(s for s in strategies if s.name == name)
            sink.write(json.dumps({"problem": bench.name, **_problem_fields(bench), "strategy": name,
                                   "origin": s.origin.value, "seed": None, "workers": config.workers,
                                   "budget": config.budget, "not_applicable": True, "error": why}) + "\n")

    def keep(rec: dict[str, Any]) -> None:
        records.append(rec)
        if sink is not None:
            sink.write(json.dumps(_jsonable(rec)) + "\n")
            sink.flush()
        status = "ERROR " + rec["error"].splitlines()[0] if rec.get("error") else (
            f"final regret {rec['final_regret']:.3g}% after {rec['n_trials']} trials")
        say(f"[{len(records)}/{len(jobs)}] {rec['strategy']} seed {rec['seed']}: {status} "
            f"({rec.get('wall_s', 0.0):.1f} s)")

    try:
        if config.jobs <= 1:
            for job in jobs:
                keep(run_one(*job))
        else:
            with ProcessPoolExecutor(config.jobs, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(run_one, *job) for job in jobs]
                for fut in as_completed(futures):
                    keep(fut.result())
    finally:
        if sink is not None:
            sink.close()
    order = {(s, seed): i for i, (_, _, s, seed, *_rest) in enumerate(jobs)}
    records.sort(key=lambda r: order[(r["strategy"], r["seed"])])
    return BenchmarkResult(config, bench.name, bench.describe(), best, records, unavailable,
                           time.perf_counter() - t0, bench.regret_unit, not_applicable)


def _not_applicable(strategy: Strategy, bench: BenchmarkProblem, budget: float) -> str | None:
    """Why ``strategy`` with its default options cannot be built for ``bench`` (its constructor's
    ``InvalidProblemError``), or ``None``. A bad ``--options`` value, or any other constructor error, is
    left to the runs, which record it as a failure."""
    problem = copy.deepcopy(bench.problem)
    problem.budget = budget
    try:
        strategy.cls(problem, seed=0)
    except InvalidProblemError as e:
        return str(e)
    except Exception:  # noqa: BLE001 - recorded by run_one, per seed
        return None
    return None


def load_results(paths: list[str | Path], tags: list[str] | None = None,
                 strategies: list[str] | None = None) -> BenchmarkResult:
    """Merge the raw records of one or more runs on the same problem, workers and budget (e.g. cheap
    strategies with 10 seeds and expensive ones with fewer) into one result, to tabulate and plot together.
    A (strategy label, seed) pair counts once (:func:`bench.metrics.strategy_label`: a strategy run with
    other options is another row). ``tags`` (one per path, "" for none) label every record of that run, so
    the same strategy from two code versions (before / after a change) is two rows, compared pairwise;
    ``strategies`` keeps only the records of those strategy names."""
    if tags is not None and len(tags) != len(paths):
        raise ValueError(f"{len(tags)} tags for {len(paths)} runs")
    records: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        path = Path(path)
        file = path / "results.jsonl" if path.is_dir() else path
        loaded = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        if tags is not None and tags[i]:
            loaded = [{**r, "tag": tags[i]} for r in loaded]
        if strategies is not None:
            loaded = [r for r in loaded if r.get("strategy") in strategies]
        records += loaded
    if not records:
        raise ValueError(f"no records in {[str(p) for p in paths]}")
    unavailable = {r["strategy"]: r.get("error") or "" for r in records if r.get("unavailable")}
    not_applicable = {r["strategy"]: r.get("error") or "" for r in records if r.get("not_applicable")}
    records = [r for r in records if not r.get("unavailable") and not r.get("not_applicable")]
    if not records:
        raise ValueError(f"no completed runs in {[str(p) for p in paths]}")
    keys = {(r["problem"], r["workers"], float(r["budget"])) for r in records}
    if len(keys) != 1:
        raise ValueError(f"records mix problems / workers / budgets: {sorted(keys)}")
    (problem, workers, budget), = keys
    # a (strategy, seed) pair counts once: the first record of it wins
    records = list({(strategy_label(r), r["seed"]): r for r in reversed(records)}.values())[::-1]
    # rows in the order a single `run --strategies all` gives (registered schedulers, then peers), whatever
    # the order of the merged runs; unknown names (plug-ins) after them, in order of appearance
    rank = {name: i for i, name in enumerate(strategy_names())}
    records.sort(key=lambda r: rank.get(r["strategy"], len(rank)))
    for r in records:  # JSON has no inf: the regrets were written as Infinity or null
        r["regret"] = [float("inf") if v is None else float(v) for v in r.get("regret") or []]
        if r.get("final_regret") is None and "final_regret" in r:
            r["final_regret"] = float("inf")
    strategies = list(dict.fromkeys(strategy_label(r) for r in records))
    seeds = sorted({int(r["seed"]) for r in records})
    n_checkpoints = max(len(r.get("checkpoints") or []) for r in records)
    config = BenchmarkConfig(problem, strategies, seeds, workers, budget, n_checkpoints=n_checkpoints)
    described = [r for r in records if r.get("problem_description")]
    if described:  # the records say what the problem was
        description, best = described[0]["problem_description"], float(described[0]["best_target_value"])
        unit = RegretUnit(described[0]["regret_unit"])
        units = {r.get("regret_unit") for r in described}
        if len(units) != 1:
            raise ValueError(f"records mix regret units: {sorted(units)}")
    else:  # records written before they carried it: rebuild the problem by its name
        try:
            bench = make_problem(problem)
            description, best, unit = bench.describe(), bench.best_target_value, bench.regret_unit
        except Exception as e:  # noqa: BLE001 - a plugin problem may not resolve by its name
            description, best = f"{problem} ({type(e).__name__}: {e})", float("nan")
            unit = RegretUnit.RELATIVE_PERCENT
    return BenchmarkResult(config, problem, description, best, records, unavailable,
                           sum(float(r.get("wall_s") or 0.0) for r in records), unit, not_applicable)
