"""MultiScaleCostAwareBO: find the best config at the target (s*, m*) while paying mostly for short runs
of small models.

The scheduler keeps one multi-scale GP (:mod:`schedulers.multiscale.surrogate`) over
``(config, log size, log steps)`` and uses it three ways:

- ask (:meth:`suggest`): the config and fidelity (size, step budget) with the most target-EI information
  per unit cost (:mod:`schedulers.multiscale.acquisition`), with the live trials conditioned in as
  kriging-believer fantasies so asynchronous workers do not pile onto one point;
- resume (:meth:`resume`): continue the paused trial whose next segment is worth most per unit cost, but
  only when that beats the best fresh trial, so a paused trial is resumed exactly when it is the better use
  of a worker;
- tell (:meth:`report`): STOP a trial when the posterior probability that its config beats the incumbent
  at the target, given its latest report, falls below ``stop_prob``; at the end of its step budget PAUSE
  it (resumable, to be weighed against fresh trials) unless it reached the target steps.

Replay determinism and cost. Decisions depend on the model, so the model a decision sees must be a
function of the event history alone. The "decision model" is therefore rebuilt only in hooks that replay
re-runs: at SUGGEST events and at segment ends it is re-conditioned on the current training set when the
number of observations grew by ``refresh_growth`` since the last rebuild, and at SUGGEST events its
hyperparameters are refitted when it grew by ``refit_growth`` since the last fit (L-BFGS capped at ``fit_iters`` iterations on at most
``fit_max`` points, warm-started, no timeouts or random restarts). Between rebuilds a decision conditions
the model on the trial's latest report in ``O(n)`` (two-point Gaussian conditioning), never a refit.
Ask-time answers (suggest, resume, recommend) use a fresh conditioning on all current data with the
same hyperparameters; they do not change the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from schedulers.base import Decision, Recommendation, Scheduler, Trial, TrialState
from schedulers.errors import InvalidProblemError, ModelFittingError
from schedulers.models.candidates import perturb, sobol_points, unique_rows
from schedulers.multiscale.acquisition import (AcquisitionKind, Fidelity, best_by_value_per_cost,
                                               best_fidelity, probability_of_improvement,
                                               recommendation_score, target_ei, target_knowledge_gradient)
from schedulers.multiscale.features import FidelityEncoder, OptimumShift
from schedulers.multiscale.kernels import DriftMode, MeanKind
from schedulers.multiscale import multiobjective as mo
from schedulers.multiscale.observations import ObservationStore
from schedulers.multiscale.surrogate import Posterior, Surrogate, fit_drift_selected
from schedulers.multiscale.warping import OutputWarp
from schedulers.objectives import ParetoPoint, sample_weights
from schedulers.problem import Direction, Problem


class MultiScaleCostAwareBO(Scheduler):
    """Multi-fidelity, multi-scale, cost-aware asynchronous Bayesian optimisation (see the module docstring).

    Options (defaults):

    - ``n_init`` (4): trials drawn at random, each run to the target steps at the smallest size, before
      the model takes over.
    - ``mean`` ("scaling_law"): GP mean, ``"scaling_law"`` (``c + a_m exp(-r_m u_m) + a_s exp(-r_s u_s)``)
      or ``"constant"``. Picked by measurement on the test problem (``synthetic.py``, 4 sizes, seed 0,
      budget 3 target runs, ``n_init=8``): target regret 0.06% with 8% of the cost at the target size for
      the scaling-law mean, 0.11% with 69% for the constant mean (one seed: indicative, not a benchmark).
    - ``n_max`` (600): most points the GP is conditioned on (subsampled curves, best and most recent
      trials first). 300 before: on datamix at budget 10 the cap binds after about 6 target runs; the
      median final regret over 10 seeds was 0.19% with 300 and 0.048% with 600, a difference the paired
      test does not tell from seed noise (Wilcoxon p 0.12; steplaw and hartmann never reach the cap).
      Kept because it drops less evidence at the same latency budget (bench/README.md, "Flagship").
    - ``fit_max`` (120): most points used to fit hyperparameters; ``fit_iters`` (40): L-BFGS iterations.
    - ``refit_growth`` (1.5): refit hyperparameters when the observation count grew by this factor.
    - ``refresh_growth`` (0.05): re-condition the decision model when the observation count grew by this
      fraction (and by at least one observation) since the last rebuild.
    - ``stop_prob`` (0.01): stop a trial when P(its target value beats the incumbent) is below this.
    - ``stop_grace`` (1): never stop before this many multiples of the smallest report step.
    - ``step_ratio`` (2.0): ratio between successive step budgets on the fidelity grid.
    - ``n_candidates`` (256): quasi-random candidates per ask, plus ``n_local`` (32) perturbations of
      each of the 5 best evaluated configs; ``top_k`` (8) of them get a fidelity search.
    - ``interaction`` (True): add the config-by-fidelity interaction term to the kernel
      (:func:`schedulers.multiscale.kernels.interaction_kernel`), so that the ranking of configs may change
      with size and steps and the target's uncertainty stays honest until sizes near it were run.
      Measured (budget 2 target runs, 4 workers, median final regret over seeds, off -> on): ``datamix``
      10 seeds 3.6% -> 2.3% (prediction error at the target up to 9 posterior std -> within 2);
      ``synthetic_sp`` 3 seeds 1.98% -> 0.16%; ``hartmann`` 3 seeds 41.6% -> 2.0%; ``synthetic_mup``
      3 seeds 0.066% -> 0.067%. The price: it pays for more runs near the target size (on the test
      problem of ``synthetic.py``, 67% of the cost at the target size instead of 8%).
    - ``drift`` ("selected"): whether the kernel learns how the optimum moves with model size and steps
      (:class:`~schedulers.multiscale.kernels.OptimumDrift`: configs compared in a frame shifted linearly
      in the log fidelities, zero at the target), ``"off"``, ``"on"`` or ``"selected"`` (both fitted at
      every hyperparameter fit, the drifting one kept when the likelihood supports it; see
      :meth:`_fit`). Measurements in bench/README.md ("Flagship tuning").
    - ``common`` (False): add a fidelity effect that every config shares
      (:func:`~schedulers.multiscale.kernels.common_fidelity_kernel`). Measured, not the default (same
      section).
    - ``cost_power`` (1.0): the acquisition divides by ``cost ** cost_power`` (in [0, 1]); below 1 it
      favours runs nearer the target. Only the default 1 has been benchmarked.
    - ``acquisition`` ("ei"): how a run is valued, ``"ei"`` (target EI x rho^2 per unit cost, see
      :mod:`schedulers.multiscale.acquisition`) or ``"kg"`` (the discrete knowledge gradient at the target
      per unit cost, :func:`~schedulers.multiscale.acquisition.target_knowledge_gradient`). Both are
      benchmarked side by side in bench/README.md ("Flagship variants"); EI is the default because it
      ended better on datamix and steplaw there.
    - ``risk`` (1.0): the recommendation minimises ``mean + risk * std`` of the target value
      (:func:`~schedulers.multiscale.acquisition.recommendation_score`), and the knowledge gradient
      values runs by the same rule. With EI it changes only the recommendation, so risk 1 and 0 were
      compared on the same search trajectories (10 seeds, budget 10, median final regret, 0 -> 1):
      steplaw 0.65% -> 0.35%, synthetic_sp 0.067% -> 0.037%, datamix 0.25% -> 0.23%, hartmann and
      synthetic_mup unchanged. The price: steplaw reaches 0.25% in 7 of 10 seeds instead of 8, and
      synthetic_mup's cost to 1% goes from 0.028 to 0.034 target runs (bench/README.md, "Flagship tuning"). With the knowledge gradient, risk 1 against 0 on datamix (budget 10,
      10 seeds, an earlier candidate generator): cost to 1% regret 0.28 against 2.4 target runs, median
      final regret 0.38% against 0.50%; the risk-neutral knowledge gradient hardly ever ran the target
      size.
    - ``n_reference`` (32): configs whose target values the knowledge gradient weighs.
    - ``promote_only`` (False): a config with no run yet may start only at the smallest size, so every
      larger run is a promotion. Why it exists: with the knowledge gradient, 7 of 71 trials of one datamix
      run (seed 0, budget 10) were full runs at 700M or 1B of configs 9-19% from the optimum at the
      target, 0.7-1 target runs each. Measured in "Flagship variants".
    - ``verify_rounds`` (1): how many times, at most, the recommendation is verified at the target before
      the budget runs out (0: never). When the problem has a ``budget`` and the recommended config has no
      run at the target fidelity, the scheduler runs it there (a new trial at the target size, or its
      paused trial at that size continued to the target steps) once the remaining budget is within
      ``verify_rounds`` verifications of the end and one still fits: every busy worker spends while it runs,
      so with ``W`` workers a verification costing ``c`` target runs fits while the remaining budget is at
      least ``W c`` (:meth:`_verification`). One at a time. Why: the recommendation is a prediction, and for
      configs seen only at small fidelities it was overconfident (datamix, seed 0: predicted -5% +- 3.9%
      at the target, true +6.4%); a study could also end with no run at the target at all (the muP example
      on Ray, budget 4 target runs: 29 trials, none at width 128 and 300 steps).
    - ``warp`` (True): fit the GP to the outcomes through an output warp that is the identity up to Tukey's
      far-out fence of every reported value (upper quartile + 3 interquartile ranges) and logarithmic above
      it (:mod:`schedulers.multiscale.warping`, :meth:`_output_warp`), so that diverged runs do not set
      the scale of every posterior standard deviation. Measured (10 seeds, budget 10, bench/README.md
      "Flagship tuning", fourth round): steplaw's median final regret 0.345% -> 0.194%, 0.25% reached in
      8 seeds instead of 6; the other five problems ran as before.
    - ``endgame`` (0, off): in the last ``endgame`` fraction of the problem's budget, new runs are at the
      target fidelity only and only trials at the target size are resumed (to the target steps): a cheap
      run's information can no longer be followed up there before the budget ends, and near the optimum
      the configs differ by less than what small sizes resolve at the target (steplaw: 0.005 in loss
      between configs within 0.25%). Measured at 0.3 (10 seeds, budget 10, bench/README.md "Flagship
      tuning", fifth round): steplaw's median final regret 0.30% -> 0.15%, datamix 0.046% -> 0.105% (two
      seeds worse, three better). Re-measured on another install (sixth round): steplaw 0.107% -> 0.151%,
      datamix 0.087% -> 0.044%, synthetic_mup 0.047% -> 0.061%, lcbench unchanged: noise, so off by default.
    - Multiple objectives (``problem.objectives.is_multi``): the search runs on ParEGO scalarisations, a
      fresh weight per ask, and :meth:`pareto` predicts the Pareto set at the target with one GP per
      outcome (:mod:`schedulers.multiscale.multiobjective`). Early stopping is off then (a trial poor under
      one weighting may be on the front under another; trials still pause at the end of their step budget),
      and so are the output warp (scalarised values lie in [0, 1 + rho], constraint penalties above) and
      ``verify_rounds`` (the answer is a set).
    - ``optimum_shift`` (None): warm-start prior on how the optimum moves with model size, either a
      callable ``params -> {name: predicted optimal value}`` (e.g. from ``schedulers.scaling``) or
      ``{name: exponent}`` for log-scaled parameters whose optimum scales as ``size ** exponent``.
    """

    name = "multiscale_bo"

    def __init__(self, problem: Problem, seed: int = 0, *, n_init: int = 4, mean: str = "scaling_law",
                 n_max: int = 600, fit_max: int = 120, fit_iters: int = 40, refit_growth: float = 1.5,
                 refresh_growth: float = 0.05, stop_prob: float = 0.01, stop_grace: float = 1.0,
                 step_ratio: float = 2.0, n_candidates: int = 256, n_local: int = 32, top_k: int = 8,
                 interaction: bool = True, drift: str = "selected", common: bool = False, cost_power: float = 1.0, acquisition: str = "ei",
                 risk: float = 1.0, n_reference: int = 32, promote_only: bool = False, verify_rounds: int = 1,
                 warp: bool = True, endgame: float = 0.0,
                 optimum_shift: Callable[[float], Mapping[str, float]] | Mapping[str, float] | None = None,
                 **options: Any) -> None:
        super().__init__(problem, seed, **options)
        checks = {"n_init": n_init >= 1, "n_max": n_max >= 8, "fit_max": 8 <= fit_max <= n_max,
                  "fit_iters": fit_iters >= 1, "refit_growth": refit_growth >= 1.0,
                  "refresh_growth": refresh_growth >= 0.0, "stop_prob": 0.0 <= stop_prob < 1.0,
                  "stop_grace": stop_grace >= 0.0, "step_ratio": step_ratio > 1.0,
                  "n_candidates": n_candidates >= 1, "n_local": n_local >= 0, "top_k": top_k >= 1,
                  "cost_power": 0.0 <= cost_power <= 1.0, "risk": 0.0 <= risk <= 3.0,
                  "n_reference": n_reference >= 1,
                  "verify_rounds": isinstance(verify_rounds, int) and verify_rounds >= 0,
                  "endgame": 0.0 <= endgame < 1.0}
        for option, ok in checks.items():
            if not ok:
                raise InvalidProblemError(f"scheduler {self.name!r}: invalid value for option {option!r}",
                                          field=f"scheduler.options.{option}")
        try:
            self.mean_kind = MeanKind(mean)
        except ValueError:
            raise InvalidProblemError(f"mean must be one of {[k.value for k in MeanKind]}, got {mean!r}",
                                      field="scheduler.options.mean") from None
        self.n_init, self.n_max, self.fit_max, self.fit_iters = n_init, n_max, fit_max, fit_iters
        self.refit_growth, self.refresh_growth = refit_growth, refresh_growth
        self.stop_prob, self.stop_grace, self.step_ratio = stop_prob, stop_grace, step_ratio
        self.n_candidates, self.n_local, self.top_k = n_candidates, n_local, top_k
        try:
            self.acquisition = AcquisitionKind(acquisition)
        except ValueError:
            raise InvalidProblemError(f"acquisition must be one of {[k.value for k in AcquisitionKind]}, "
                                      f"got {acquisition!r}", field="scheduler.options.acquisition") from None
        self.interaction = bool(interaction)
        try:
            self.drift = DriftMode(drift)
        except ValueError:
            raise InvalidProblemError(f"drift must be one of {[k.value for k in DriftMode]}, got {drift!r}",
                                      field="scheduler.options.drift") from None
        self.common = bool(common)
        self.cost_power = float(cost_power)
        self.risk, self.n_reference = float(risk), int(n_reference)
        self.promote_only = bool(promote_only)
        self.verify_rounds = int(verify_rounds)
        self.warp = bool(warp)
        self.endgame = float(endgame)
        shift = OptimumShift(problem, optimum_shift) if optimum_shift is not None else None
        self.encoder = FidelityEncoder(problem, shift)
        self.store = ObservationStore(self.encoder)
        self.step_grid = self.encoder.step_grid(step_ratio)
        # the decision model, rebuilt only in hooks that replay re-runs (see the module docstring)
        self.surrogate: Surrogate | None = None
        self._fits: dict[bool, Surrogate] = {}     # the last fit per frame (drifting or not), for warm starts
        self._decision_model: Posterior | None = None
        self._incumbent = math.inf
        self._obs_at_fit = 0
        self._obs_at_refresh = 0
        self._n_fits = 0
        self._n_refreshes = 0
        self._ask_cache: tuple[tuple[int, int], Any] | None = None
        self._global_candidates: np.ndarray | None = None
        self._multi = problem.objectives.is_multi
        self._pareto_cache: tuple[tuple[int, int], list[ParetoPoint]] | None = None

    # ------------------------------------------------------------------ hooks (live and replay)
    def _on_suggest(self, trial: Trial) -> None:
        self.store.add_trial(trial.trial_id, self.encoder.aligned_x(trial.params, trial.size), trial.size)
        self._refresh_if_due()

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        vector = (mo.outcome_vector(self.problem.objectives, self.outcomes_at(trial, step))
                  if self._multi else None)
        self.store.add_report(trial.trial_id, step, y, vector)
        finished = step >= self.encoder.target_steps
        at_budget_end = step >= trial.steps
        if (self._decision_model is not None and trial.replicate == 0 and not self._multi
                and step >= self.stop_grace * self.encoder.min_steps
                and self.target_improvement_probability(trial, step, y) < self.stop_prob):
            return Decision.STOP
        if at_budget_end and not finished:
            return Decision.PAUSE
        return Decision.CONTINUE

    def _on_end(self, trial: Trial) -> None:
        if trial.state is TrialState.FAILED:
            self.store.add_failure(trial.trial_id, trial.last_step or self.encoder.min_steps)
        # a finished segment is new evidence for the other running trials' decisions: re-condition
        # (cheap), but leave hyperparameter fits to SUGGEST events so reports stay fast
        self._refresh_if_due(allow_fit=False)

    def _extra_state(self) -> Any:
        return {"fits": self._n_fits, "refreshes": self._n_refreshes,
                "observations": self.store.n_observations}

    # ------------------------------------------------------------------ the decision model
    def _refresh_if_due(self, allow_fit: bool = True) -> None:
        n_obs = self.store.n_observations
        fit_due = allow_fit and (self.surrogate is None or n_obs >= self.refit_growth * self._obs_at_fit)
        refresh_due = n_obs - self._obs_at_refresh >= max(1.0, self.refresh_growth * self._obs_at_refresh)
        if not refresh_due and not (fit_due and n_obs > self._obs_at_fit):
            return
        if self.surrogate is None and not allow_fit:
            return
        X, y = self._training_set()
        trials_with_data = sum(1 for c in self.store.curves.values() if c.points)
        if len(y) < 4 or trials_with_data < min(self.n_init, 2):
            return
        if fit_due:
            self.surrogate = self._fit(X[: self.fit_max], y[: self.fit_max])
            self._obs_at_fit = n_obs
            self._n_fits += 1
        assert self.surrogate is not None
        try:
            self._decision_model = self.surrogate.condition(X, y)
        except ModelFittingError:
            return  # keep the previous decision model; the next rebuild has more data
        self._incumbent = self._incumbent_value(self._decision_model, X)
        self._obs_at_refresh = n_obs
        self._n_refreshes += 1

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        """Fit hyperparameters (:func:`~schedulers.multiscale.surrogate.fit_drift_selected`), each frame
        warm-started from its own last fit."""
        chosen, self._fits = fit_drift_selected(X, y, self.drift, self._fits, mean_kind=self.mean_kind,
                                                max_iter=self.fit_iters, interaction=self.interaction,
                                                common=self.common, warp=self._output_warp())
        return chosen

    def _output_warp(self) -> OutputWarp:
        """The output warp for the next fit, from every value reported so far: the fit set and the
        training set are both biased towards good trials, and late in a run their quartiles are so close
        that ordinary values would count as outliers (hartmann, 10 seeds, budget 10: a fence fitted on the
        fit set warped 5% of it and the median final regret went from 0.097% to 0.48%)."""
        return OutputWarp.fit(self.store.reported_values()) if self.warp and not self._multi else OutputWarp()

    def _training_set(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The GP's training set; for several objectives, scalarised with ``weights`` (equal by default)."""
        if not self._multi:
            return self.store.training_set(self.n_max)
        X, y, V = self.store.training_rows(self.n_max)
        objectives = self.problem.objectives
        weights = mo.equal_weights(objectives) if weights is None else weights
        return X, mo.scalarise(objectives, V, y, weights)

    def _incumbent_value(self, post: Posterior, X: np.ndarray) -> float:
        """Best posterior mean at the target among the configs in the training set."""
        configs = unique_rows(X[:, : self.encoder.dim])
        mean, _ = post.predict(self.encoder.at_target(configs))
        return float(mean.min())

    def target_improvement_probability(self, trial: Trial, step: int, y: float) -> float:
        """P(f(x, s*, m*) < incumbent) for ``trial``'s config given the decision model and the trial's
        report ``y`` at ``step`` (two-point Gaussian conditioning, ``O(n)``)."""
        post = self._decision_model
        assert post is not None
        x = self.store.curves[trial.trial_id].x
        rows = np.vstack([self.encoder.at_target(x[None, :]), self.encoder.inputs(x, trial.size, step)[None]])
        mean, cov = post.joint(rows)
        obs_var = max(cov[1, 1], 0.0) + post.noise
        gain = cov[0, 1] / obs_var
        mean_t = mean[0] + gain * (float(post.observed(y)[0]) - mean[1])
        var_t = max(cov[0, 0] - gain * cov[0, 1], 1e-12)
        return probability_of_improvement(mean_t, math.sqrt(var_t), self._incumbent)

    # ------------------------------------------------------------------ ask-time model (stateless)
    def _ask_model(self, with_pending: bool = True) -> Posterior | None:
        if self.surrogate is None:
            return None
        # several objectives: every ask draws its weights (a function of the event history: replayable)
        weights = (sample_weights(self._rng(11), len(self.problem.objectives.defs))
                   if self._multi and with_pending else None)
        X, y = self._training_set(weights)
        try:
            post = self.surrogate.condition(X, y)
        except ModelFittingError:
            return self._decision_model
        if with_pending:
            pending = [self.encoder.inputs(self.store.curves[t.trial_id].x, t.size, t.steps)
                       for t in self.live_trials()]
            if pending:
                post = post.believe(np.asarray(pending))
        return post

    def _evaluated_configs(self) -> tuple[np.ndarray, list[int]]:
        """Unique target-frame configs with data ``k x d``, and for each the trial at the highest fidelity."""
        best: dict[bytes, tuple[tuple[int, int], int, np.ndarray]] = {}
        for c in self.store.curves.values():
            if not c.points and c.failed_at is None:
                continue
            key = np.round(c.x, 9).tobytes()
            last = c.last
            rank = (self.ladder.index(c.size), last[0] if last else 0)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, c.trial_id, c.x)
        items = sorted(best.values(), key=lambda v: v[1])
        if not items:
            return np.zeros((0, self.encoder.dim)), []
        return np.asarray([v[2] for v in items]), [v[1] for v in items]

    def _fresh_fidelities(self) -> list[Fidelity]:
        cm = self.problem.cost_model
        if self._in_endgame():
            target = self.problem.target
            return [Fidelity(target.size, target.steps, cm.cost(target.steps, self._size(target.size)))]
        return [Fidelity(size.name, s, cm.cost(s, size)) for size in self.encoder.sizes for s in self.step_grid]

    def _in_endgame(self) -> bool:
        """Whether the budget left is within its last ``endgame`` fraction: new runs are then at the target
        fidelity only (and resumes only of trials at the target size, to the target steps), since what a
        cheap run teaches can no longer be followed up at the target before the budget ends."""
        budget = self.problem.budget
        if budget is None or self.endgame <= 0.0:
            return False
        return self._remaining_budget() <= self.endgame * budget

    def _remaining_budget(self) -> float:
        """What is left of the problem's budget, in target runs (it has one: callers check)."""
        assert self.problem.budget is not None
        return self.problem.budget - self.cost_spent / self.problem.target_cost

    def _candidates(self, evaluated: np.ndarray, evaluated_mean: np.ndarray) -> np.ndarray:
        """Global quasi-random configs (drawn once per scheduler: snapping them is the costly part) plus
        perturbations of the 5 best evaluated configs plus the evaluated configs: ``n x d``."""
        if self.space.dim == 0:
            return np.full((1, 1), 0.5)
        if self._global_candidates is None:
            self._global_candidates = sobol_points(self.space, self.n_candidates,
                                                   np.random.default_rng([self.seed, 7]))
        parts = [self._global_candidates]
        if len(evaluated):
            centers = np.clip(evaluated[np.argsort(evaluated_mean, kind="stable")[:5]], 0.0, 1.0)
            parts += [perturb(self.space, centers, self.n_local, self._rng(7), scale=0.1), evaluated]
        return unique_rows(np.vstack(parts))

    def _taken(self) -> tuple[set[bytes], dict[bytes, set[str]]]:
        """Configs never to propose again (a trial of theirs was stopped or failed), and for the others the
        sizes at which a trial of theirs already exists (continuing it is resume's job)."""
        dead: set[bytes] = set()
        sizes: dict[bytes, set[str]] = {}
        for t in self.trials.values():
            key = np.round(self.store.curves[t.trial_id].x, 9).tobytes()
            if t.state in (TrialState.STOPPED, TrialState.FAILED):
                dead.add(key)
            sizes.setdefault(key, set()).add(t.size)
        return dead, sizes

    def _best_fresh(self, post: Posterior) -> tuple[float, np.ndarray, Fidelity]:
        """(value per cost, target-frame config, fidelity) of the best new trial."""
        evaluated, _ = self._evaluated_configs()
        evaluated_mean = post.predict(self.encoder.at_target(evaluated))[0] if len(evaluated) else np.zeros(0)
        cands = self._candidates(evaluated, evaluated_mean)
        dead, taken_sizes = self._taken()
        keys = [row.tobytes() for row in np.round(cands, 9)]
        alive = np.asarray([k not in dead for k in keys])
        if alive.any():
            cands, keys = cands[alive], [k for k, a in zip(keys, alive) if a]
        best_mean = float(evaluated_mean.min()) if len(evaluated) else self._incumbent
        ei, cand_mean, _ = target_ei(post, self.encoder, cands, best_mean)
        fidelities = self._fresh_fidelities()
        screened = self._screen(ei, cand_mean)
        options = []
        entry = [f for f in fidelities if f.size == self.encoder.sizes[0].name] or fidelities
        for i in screened:
            used = taken_sizes.get(keys[i], set())
            if not used and self.promote_only:
                options.append(entry)   # see the option's measurements in the class docstring
            else:
                options.append([f for f in fidelities if f.size not in used] or fidelities)
        scored = self._value_per_cost(post, evaluated, cands[screened], ei[screened], options)
        best = max(range(len(screened)), key=lambda j: scored[j][0])
        return scored[best][0], cands[screened[best]], scored[best][1]

    def _screen(self, ei: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Indices of the configs that get a fidelity search: the ``top_k`` by target EI and, for the
        knowledge gradient, the ``top_k // 2`` best by target mean as well (refining around the incumbent
        has little EI but can be worth most)."""
        order = list(np.argsort(-ei, kind="stable")[: self.top_k])
        if self.acquisition is AcquisitionKind.KNOWLEDGE_GRADIENT:
            order += list(np.argsort(mean, kind="stable")[: max(1, self.top_k // 2)])
        return np.asarray(list(dict.fromkeys(int(i) for i in order)), dtype=int)

    def _value_per_cost(self, post: Posterior, evaluated: np.ndarray, configs: np.ndarray, ei: np.ndarray,
                        options: Sequence[Sequence[Fidelity]]) -> list[tuple[float, Fidelity]]:
        """(best value per cost, its fidelity) for each of the ``c x d`` configs over its fidelities."""
        if self.acquisition is AcquisitionKind.TARGET_EI:
            return [best_fidelity(post, self.encoder, x, float(e), opts, self.cost_power)
                    for x, e, opts in zip(configs, ei, options)]
        reference = self._reference(post, evaluated)
        kgs = target_knowledge_gradient(post, self.encoder, reference, configs, options, self.risk)
        return [best_by_value_per_cost(kg, opts, self.cost_power) for kg, opts in zip(kgs, options)]

    def _reference(self, post: Posterior, evaluated: np.ndarray) -> np.ndarray:
        """The ``n_reference`` evaluated configs with the best recommendation score: ``a x d``."""
        if not len(evaluated):
            return np.zeros((0, self.encoder.dim))
        mean, var = post.predict(self.encoder.at_target(evaluated))
        order = np.argsort(recommendation_score(mean, var, self.risk), kind="stable")
        return evaluated[order[: self.n_reference]]

    def _best_resume(self, post: Posterior) -> tuple[float, Trial, Fidelity] | None:
        paused = [t for t in self.trials.values()
                  if t.state is TrialState.PAUSED and t.last_step < self.encoder.target_steps]
        endgame = self._in_endgame()
        if endgame:
            paused = [t for t in paused if t.size == self.problem.target.size]
        if not paused:
            return None
        X = np.asarray([self.store.curves[t.trial_id].x for t in paused])
        evaluated, _ = self._evaluated_configs()
        best_mean = float(post.predict(self.encoder.at_target(evaluated))[0].min())
        ei, mean, _ = target_ei(post, self.encoder, X, best_mean)
        cm = self.problem.cost_model
        screened, options = [], []
        for i in self._screen(ei, mean):
            t = paused[int(i)]
            size = self._size(t.size)
            opts = [Fidelity(t.size, s, cm.segment_cost(t.last_step, s, size), t.last_step)
                    for s in self.step_grid if s > t.last_step and (not endgame or s == self.encoder.target_steps)]
            if opts:
                screened.append(int(i))
                options.append(opts)
        if not screened:
            return None
        scored = self._value_per_cost(post, evaluated, X[screened], ei[screened], options)
        best = max(range(len(screened)), key=lambda j: scored[j][0])
        return scored[best][0], paused[screened[best]], scored[best][1]

    def _plan(self) -> tuple[Posterior, tuple[float, np.ndarray, Fidelity]] | None:
        """The ask-time model and the best fresh trial, cached per state (resume() then suggest())."""
        key = (len(self.trials), len(self.events))
        if self._ask_cache is not None and self._ask_cache[0] == key:
            return self._ask_cache[1]
        post = self._ask_model()
        plan = None if post is None else (post, self._best_fresh(post))
        self._ask_cache = (key, plan)
        return plan

    # ------------------------------------------------------------------ ask
    def _init_fidelity(self) -> tuple[str, int]:
        sizes = self.encoder.sizes
        if len(sizes) > 1:
            return sizes[0].name, self.encoder.target_steps
        return sizes[0].name, self.step_grid[len(self.step_grid) // 2]

    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        plan = self._plan() if len(self.trials) >= self.n_init else None
        if plan is None:
            size, steps = self._init_fidelity()
            return [(p, size, steps) for p in self.space.sample(self._rng(1), n)]
        post, first = plan
        out = []
        verification = self._verification(n)
        if verification is not None and verification.trial_id is None:
            target = self.problem.target
            out.append((verification.params, target.size, target.steps))
            post = post.believe(self.encoder.at_target(verification.x[None, :]))
        for i in range(len(out), n):
            score, x, fid = first if i == 0 else self._best_fresh(post)
            out.append((self.encoder.config_at(x, fid.size), fid.size, fid.steps))
            # kriging believer for the next pick of this batch
            post = post.believe(self.encoder.inputs(x, fid.size, fid.steps)[None, :])
        return out

    def _choose_resume(self) -> tuple[int, int] | None:
        if self.surrogate is None or not any(t.state is TrialState.PAUSED for t in self.trials.values()):
            return None
        verification = self._verification(1)
        if verification is not None and verification.trial_id is not None:
            return verification.trial_id, self.problem.target.steps
        plan = self._plan()
        if plan is None:
            return None
        post, (fresh_score, _, _) = plan
        resume = self._best_resume(post)
        if resume is None or resume[0] < fresh_score:
            return None
        _, trial, fid = resume
        return trial.trial_id, fid.steps

    # ------------------------------------------------------------------ verification at the target
    def _verification(self, n_new: int) -> "Verification | None":
        """The run that verifies the recommendation at the target, when it is due (``verify_rounds``):
        the problem has a budget, nothing is being verified now, the recommended config has no trial at the
        target fidelity, and with ``W`` busy workers (the live trials and ``n_new``) the remaining budget
        ``B`` lies in ``[W c, (W r + 1) c]`` for a verification costing ``c`` target runs and
        ``r = verify_rounds`` (below ``W c`` it would be cut off by the others' spending before it ends)."""
        budget, target = self.problem.budget, self.problem.target
        if budget is None or self.verify_rounds == 0 or self.surrogate is None or self._multi:
            return None  # several objectives: the answer is a set, predicted by a GP per outcome
        if any(t.size == target.size and t.steps >= target.steps and t.replicate == 0
               for t in self.live_trials()):
            return None  # one at a time: a live run at the target fidelity is (or acts as) the verification
        remaining = self._remaining_budget()
        workers = len(self.live_trials()) + n_new
        if remaining > workers * self.verify_rounds + 1:
            return None  # not due for any cost up to one target run: skip the recommendation's conditioning
        rec = self.recommend()
        if rec.trial_id is None:
            return None
        x = self.store.curves[rec.trial_id].x
        key = np.round(x, 9).tobytes()
        at_target_size = [t for t in self.trials.values() if t.size == target.size and t.replicate == 0
                          and np.round(self.store.curves[t.trial_id].x, 9).tobytes() == key]
        if any(t.state is not TrialState.PAUSED or t.last_step >= target.steps for t in at_target_size):
            return None  # measured at the target, or stopped or failed there, or running there now
        cm, size = self.problem.cost_model, self._size(target.size)
        paused = max(at_target_size, key=lambda t: t.last_step, default=None)
        cost = (cm.segment_cost(paused.last_step, target.steps, size) if paused is not None
                else cm.cost(target.steps, size)) / self.problem.target_cost
        if not workers * cost <= remaining <= (workers * self.verify_rounds + 1) * cost:
            return None
        return Verification(x, dict(rec.params), None if paused is None else paused.trial_id)

    # ------------------------------------------------------------------ recommend
    def recommend(self) -> Recommendation:
        """The evaluated config with the best recommendation score at the target (the posterior mean unless
        ``risk`` > 0; a diverged run enters the model as a bad value, see ``observations``), with the GP's
        predicted target value and standard deviation (user's direction). Before the first fit: the base
        rule. Several objectives: the point of :meth:`pareto` best in the primary objective."""
        if self._multi:
            front = self.pareto()
            if not front:
                return super().recommend()
            best, target, primary = front[0], self.problem.target, self.problem.objectives.primary.metric
            return Recommendation(best.params, best.values[primary], (best.stds or {}).get(primary), target.size,
                                  target.steps, best.trial_id, tuple(self.space.border_warnings(best.params)))
        post = self._ask_model(with_pending=False)
        evaluated, trial_ids = self._evaluated_configs()
        if post is None or not len(evaluated):
            return super().recommend()
        mean, var = post.predict(self.encoder.at_target(evaluated))
        i = int(np.argmin(recommendation_score(mean, var, self.risk)))
        trial = self.trials[trial_ids[i]]
        target = self.problem.target
        params = (dict(trial.params) if self.encoder.optimum_shift is None or trial.size == target.size
                  else self.encoder.config_at(evaluated[i], target.size))
        value, value_var = post.in_caller_units(mean[i:i + 1], var[i:i + 1])
        predicted = float(value[0]) if self.problem.direction is Direction.MINIMIZE else -float(value[0])
        return Recommendation(params, predicted, float(math.sqrt(value_var[0])), target.size, target.steps,
                              trial.trial_id, tuple(self.space.border_warnings(params)))

    def pareto(self) -> list[ParetoPoint]:
        """The Pareto set at the target, predicted by one GP per outcome over the evaluated configs
        (:func:`~schedulers.multiscale.multiobjective.predicted_front`); before the first fit, what was
        measured there (the base rule). Cached per state: it fits a GP per outcome."""
        key = (len(self.trials), len(self.events))
        if self._pareto_cache is not None and self._pareto_cache[0] == key:
            return self._pareto_cache[1]
        evaluated, trial_ids = self._evaluated_configs()
        front: list[ParetoPoint] = []
        if self._multi and self.surrogate is not None and len(evaluated):
            X, _, V = self.store.training_rows(self.n_max)
            target = self.problem.target
            configs = [(dict(self.trials[t].params) if self.encoder.optimum_shift is None
                        or self.trials[t].size == target.size else self.encoder.config_at(x, target.size), t)
                       for x, t in zip(evaluated, trial_ids)]
            try:
                front = mo.predicted_front(self.problem.objectives, X, V, self.encoder.at_target(evaluated),
                                           configs, mean_kind=self.mean_kind, interaction=self.interaction,
                                           fit_max=self.fit_max, fit_iters=self.fit_iters, risk=self.risk)
            except ModelFittingError:
                front = []
        if not front:
            front = super().pareto()
        self._pareto_cache = (key, front)
        return front


@dataclass(frozen=True)
class Verification:
    """Run target-frame config ``x`` (``params``) at the target: resume paused trial ``trial_id`` at the
    target size, or (``None``) start a new trial there."""

    x: np.ndarray
    params: dict[str, Any]
    trial_id: int | None
