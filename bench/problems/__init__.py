"""Benchmark problems: the registry of built-in ones and the resolver for ``--problem``.

``--problem`` takes a built-in name (``datamix``, ``steplaw`` or ``steplaw:strict`` (measured runs only, see
:mod:`bench.problems.steplaw`), ``lcbench`` or ``lcbench:<OpenML task id>``,
``synthetic_sp``, ``synthetic_mup``, ``hartmann``) or ``module:attribute`` naming a
:class:`~bench.problems.base.BenchmarkProblem` subclass (instantiated with ``data_dir=`` if its constructor
takes it, else without arguments) or instance, from anywhere on the import path: a new problem plugs in
with nothing in ``bench/`` changed.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from bench.problems.base import (BenchmarkProblem, MissingDataError, ProblemError, UnknownProblemError,
                                 data_root)

#: built-in name -> ("module:Class", constructor keyword arguments); imported lazily
PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "datamix": ("bench.problems.datamix:DataMix", {}),
    "steplaw": ("bench.problems.steplaw:StepLaw", {}),
    "lcbench": ("bench.problems.lcbench:LCBench", {}),
    "synthetic_sp": ("bench.problems.synthetic:SyntheticScaling", {"parametrization": "sp"}),
    "synthetic_mup": ("bench.problems.synthetic:SyntheticScaling", {"parametrization": "mup"}),
    "hartmann": ("bench.problems.hartmann:Hartmann", {}),
}

__all__ = ["BenchmarkProblem", "MissingDataError", "PROBLEMS", "ProblemError", "UnknownProblemError",
           "data_root", "make_problem", "problem_names"]


def problem_names() -> list[str]:
    return sorted(PROBLEMS)


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise UnknownProblemError(f"cannot import problem module {module!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownProblemError(f"module {module!r} has no attribute {attr!r}") from None
    return obj


def _instantiate(cls: type[BenchmarkProblem], data_dir: str | Path | None, **kwargs: Any) -> BenchmarkProblem:
    if "data_dir" in inspect.signature(cls).parameters:
        kwargs["data_dir"] = data_dir
    return cls(**kwargs)


def make_problem(spec: str, data_dir: str | Path | None = None) -> BenchmarkProblem:
    """Resolve ``spec`` (see the module docstring) to a problem instance."""
    head, sep, arg = spec.partition(":")
    if head in PROBLEMS:
        path, kwargs = PROBLEMS[head]
        kwargs = dict(kwargs)
        if sep and head == "lcbench":
            task, _, objective = arg.partition(":")
            kwargs["task_id"] = task
            if objective:
                kwargs["objective"] = objective
        elif sep and head == "steplaw":
            kwargs["mode"] = arg  # StepLaw checks it against its Mode enum
        elif sep:
            raise UnknownProblemError(f"problem {head!r} takes no ':' argument (got {spec!r})")
        return _instantiate(_import(path), data_dir, **kwargs)
    if not sep:
        raise UnknownProblemError(f"unknown problem {spec!r}; built-in: {problem_names()}, "
                                  "or module:attribute naming a BenchmarkProblem")
    obj = _import(spec)
    if isinstance(obj, BenchmarkProblem):
        return obj
    if inspect.isclass(obj) and issubclass(obj, BenchmarkProblem):
        return _instantiate(obj, data_dir)
    raise UnknownProblemError(f"{spec!r} is {type(obj).__name__}, not a BenchmarkProblem subclass or instance")
