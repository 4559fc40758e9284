"""The benchmark harness: a simulated asynchronous cluster (:mod:`.cluster`), strategy resolution
(:mod:`.strategies`) and the runner over strategies x seeds (:mod:`.runner`)."""

from bench.harness.cluster import RunResult, SimulatedCluster, SimulationError, cost_checkpoints
from bench.harness.runner import BenchmarkConfig, BenchmarkResult, run_benchmark, run_one
from bench.harness.strategies import Strategy, UnknownStrategyError, expand, load_strategy, strategy_names

__all__ = ["BenchmarkConfig", "BenchmarkResult", "RunResult", "SimulatedCluster", "SimulationError", "Strategy",
           "UnknownStrategyError", "cost_checkpoints", "expand", "load_strategy", "run_benchmark", "run_one",
           "strategy_names"]
