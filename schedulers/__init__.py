"""Pure tuning algorithms: search spaces, fidelity ladders, cost models and ask/tell schedulers.

Imports nothing from ``service``, ``api`` or ``workers``; only ``schedulers.ray_adapter`` imports ray.
"""

from schedulers.base import Decision, EventKind, Recommendation, Scheduler, Suggestion, Trial, TrialState
from schedulers.cost import AnalyticCost, CostModel, FormulaCost, LearnedCost, TableCost, make_cost_model
from schedulers.errors import (IllegalTransitionError, InvalidProblemError, InvalidSpaceError,
                               ModelFittingError, SchedulerError, UnknownTrialError)
from schedulers.problem import Direction, FidelityLadder, ModelSize, Problem, Target
from schedulers.registry import make_scheduler, scheduler_names
from schedulers.space import SearchSpace

__all__ = [
    "AnalyticCost", "CostModel", "Decision", "Direction", "EventKind", "FidelityLadder", "FormulaCost",
    "IllegalTransitionError", "InvalidProblemError", "InvalidSpaceError", "LearnedCost", "ModelFittingError",
    "ModelSize", "Problem", "Recommendation", "Scheduler", "SchedulerError", "SearchSpace", "Suggestion",
    "TableCost", "Target", "Trial", "TrialState", "UnknownTrialError", "make_cost_model", "make_scheduler",
    "scheduler_names",
]
