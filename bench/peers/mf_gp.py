"""Shared machinery of the two BoTorch multi-fidelity peers (MFKG and MFMS-GP): the fidelity encoding,
the training data taken from the trials' curves, the initial design, pending trials and the
recommendation at the target.

Inputs are ``n x (d + 2)``: the space's unit-cube encoding (``d`` columns), then the normalised steps
``s / max_steps`` and the normalised model size ``log(params / smallest) / log(largest / smallest)``
(0 for a one-size ladder). Outputs are minimisation values standardised by the mean and standard deviation
of the observed ones (by hand, not with an outcome transform, so that a model rebuilt on pending points
can take the fitted hyperparameters as they are).

Pending trials (issued, not reported back) enter the data as "kriging believers": their posterior mean
under the model fitted to the real data, so parallel workers get different suggestions.

Hyperparameter fits follow a schedule, because a marginal-likelihood fit is nearly all of these peers'
CPU time (measured on datamix, budget 1: 297 of 342 s in 93 fits of about 230 L-BFGS steps each, a third of
them for ``recommend``). Fit ``g`` ("generation") is made when the model-based pick number
``g * refit_every`` is proposed, on the data of the event history up to that pick, warm-started from fit
``g - 1`` (from the initial hyperparameters when fit ``g - 1`` has a collapsed kernel, see
:func:`collapsed`); every suggestion and recommendation in between conditions the latest fit's hyperparameters on all
the data seen so far (an exact GP posterior, no optimisation). ``refit_every=1`` refits before every pick,
as the original methods do. A fit is a pure function of an event-history prefix and the seed, so a seed
reproduces a run and a replayed history gives the same next suggestion as the live one; fits are made
lazily, so replaying costs no model work until the next ``suggest``.
"""

from __future__ import annotations

import abc
import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from schedulers.base import EventKind, Recommendation, Scheduler, Trial, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

@dataclass
class TrainingData:
    """``X``: ``n x (d + 2)``, ``y``: ``n`` minimisation values (raw), ``trial_ids``: the trial of each row."""

    X: np.ndarray
    y: np.ndarray
    trial_ids: list[int]


@contextlib.contextmanager
def torch_seed(seed: int) -> Iterator[None]:
    """Seed torch's global RNG for a block (BoTorch's raw samples and fantasies draw from it) and restore
    the caller's state afterwards."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


#: below this output scale (standardised units: a signal variance of 1e-4 of the data's) a fitted kernel
#: explains nothing and the model is its mean function alone
COLLAPSED_OUTPUTSCALE = 1e-4


def collapsed(state: dict[str, Any]) -> bool:
    """Whether fitted hyperparameters ``state`` (a model's state dict) have a collapsed kernel: some
    ``raw_outputscale`` at an output scale below :data:`COLLAPSED_OUTPUTSCALE`.

    Such a fit must not warm-start the next one. The output scale is ``softplus(raw)``: at the raw values
    a collapse reaches (about -22 for 3e-10) the gradient of the marginal likelihood with respect to
    ``raw`` carries a factor ``sigmoid(raw)`` of about 3e-10, so L-BFGS never moves it and every later
    fit stays the mean function alone. Seen on steplaw (MFMS-GP, seed 0): the first fit, on the 6 points
    of the 5 initial trials, is explained exactly by the linear mean (5 weights), the output scale went to
    3e-10, and every later generation kept 3.16e-10 while a fit from the initial hyperparameters on the
    same final data found 7.3. A linear model has its minimum at a vertex of the unit cube, so every
    pick and the recommendation were corners of the (lr, bs) grid.
    """
    import torch

    for name, value in state.items():
        if name.endswith("raw_outputscale"):
            if bool((torch.nn.functional.softplus(value.detach()) < COLLAPSED_OUTPUTSCALE).any()):
                return True
    return False


class MultiFidelityGPPeer(Scheduler, abc.ABC):
    """Base of the BoTorch multi-fidelity peers. Subclasses implement :meth:`_make_model` (an unfitted
    BoTorch model on ``batch x n x (d + 2)`` inputs) and :meth:`_select` (the next config and fidelity).

    Options: ``n_init`` random trials first (at random sizes, at the smallest step option),
    ``max_points`` caps the GP's training set (the most recent trials' points are kept),
    ``points_per_trial`` caps the points taken from one learning curve (evenly spaced, last included),
    ``fit_maxiter`` caps the L-BFGS iterations of the marginal-likelihood fit, ``refit_every`` sets the fit
    schedule (module docstring).
    """

    def __init__(self, problem: Problem, seed: int = 0, n_init: int = 5, max_points: int = 120,
                 points_per_trial: int = 4, fit_maxiter: int = 200, refit_every: int = 5,
                 **options: Any) -> None:
        super().__init__(problem, seed, **options)
        if n_init < 1 or max_points < 2 or points_per_trial < 1 or refit_every < 1:
            raise InvalidProblemError("need n_init >= 1, max_points >= 2, points_per_trial >= 1, refit_every >= 1",
                                      field="scheduler.options")
        self.n_init = n_init
        self.max_points = max_points
        self.points_per_trial = points_per_trial
        self.fit_maxiter = fit_maxiter
        self.refit_every = refit_every
        params = [s.params for s in self.ladder.sizes]
        self._log_span = math.log(params[-1] / params[0]) if len(params) > 1 else 0.0
        # fitted hyperparameters (a model's state dict) per generation, and the conditioned model per
        # (generation, event count)
        self._generations: list[dict[str, Any] | None] = []
        self._model_cache: tuple[tuple[int, int], Any, float, float, TrainingData] | None = None

    # ---------------------------------------------------------------- fidelity encoding
    def s_norm(self, steps: float) -> float:
        return float(steps) / self.ladder.max_steps

    def m_norm(self, size: str) -> float:
        if self._log_span == 0.0:
            return 0.0
        return math.log(self._size(size).params / self.ladder.sizes[0].params) / self._log_span

    @property
    def target_fidelity(self) -> tuple[float, float]:
        t = self.problem.target
        return self.s_norm(t.steps), self.m_norm(t.size)

    def nearest_size(self, m: float) -> str:
        return min(self.ladder.sizes, key=lambda z: abs(self.m_norm(z.name) - m)).name

    def step_options(self) -> list[int]:
        """The step budgets a suggestion may take: a third, two thirds and all of the target steps,
        snapped to reporting steps (the grid of the MFMS-GP authors' code: 60, 120, 197 of 197)."""
        report = [s for s in self.ladder.report_steps if s >= self.ladder.min_steps] or [self.ladder.max_steps]
        out = []
        for frac in (1 / 3, 2 / 3, 1.0):
            want = frac * self.problem.target.steps
            out.append(min(report, key=lambda s: (abs(s - want), s)))
        return sorted(set(out))

    def fidelity_cost(self, steps: int, size: str) -> float:
        """Cost of a fresh run at (steps, size), in units of one run at the target."""
        return self.problem.cost_model.cost(steps, self._size(size)) / self.problem.target_cost

    # ---------------------------------------------------------------- data
    def _rows(self, t: Trial) -> list[tuple[int, float]]:
        good = [(s, v) for s, v in t.curve if math.isfinite(v)]
        if len(good) <= self.points_per_trial:
            return good
        idx = np.unique(np.linspace(0, len(good) - 1, self.points_per_trial).round().astype(int))
        return [good[i] for i in idx]

    def training_data(self, trials: Sequence[Trial] | None = None) -> TrainingData:
        """The GP's data from ``trials`` (default: all trials now)."""
        trials = list(self.trials.values()) if trials is None else list(trials)
        x_all = self.space.encode([t.params for t in trials]) if trials else None
        rows_x, rows_y, ids = [], [], []
        for i, t in enumerate(trials):
            for step, value in self._rows(t):
                rows_x.append(np.concatenate([x_all[i], [self.s_norm(step), self.m_norm(t.size)]]))
                rows_y.append(self._y(value))
                ids.append(t.trial_id)
        if len(rows_y) > self.max_points:  # keep the most recent trials' points
            rows_x, rows_y, ids = rows_x[-self.max_points:], rows_y[-self.max_points:], ids[-self.max_points:]
        d = self.space.dim + 2
        return TrainingData(np.asarray(rows_x, dtype=float).reshape(-1, d), np.asarray(rows_y, dtype=float), ids)

    def _trials_before(self, n_events: int) -> list[Trial]:
        """The trials (params, size and curve only) as they were after the first ``n_events`` events."""
        trials: dict[int, Trial] = {}
        for ev in self.events[:n_events]:
            kind = EventKind(ev["kind"])
            if kind is EventKind.SUGGEST:
                trials[int(ev["trial_id"])] = Trial(int(ev["trial_id"]), dict(ev["params"]), ev["size"],
                                                    int(ev["steps"]), replicate=int(ev.get("replicate", 0)))
            elif kind is EventKind.REPORT:
                trials[int(ev["trial_id"])].curve.append((int(ev["step"]), float(ev["value"])))
        return list(trials.values())

    def _generation_prefix(self, g: int) -> int:
        """Events before model-based pick ``g * refit_every`` was issued (all events while it is being
        proposed). Suggestions add no data, so a batch's earlier picks do not change the data."""
        pick = self.n_init + g * self.refit_every  # index among replicate-0 trials
        seen = 0
        for pos, ev in enumerate(self.events):
            if ev["kind"] == EventKind.SUGGEST.value and int(ev.get("replicate", 0)) == 0:
                if seen == pick:
                    return pos
                seen += 1
        return len(self.events)

    def _model_on(self, data: TrainingData) -> tuple[Any, float, float]:
        """An unfitted model on ``data`` standardised -> (model, y mean, y std)."""
        import torch

        mu, sd = float(data.y.mean()), float(data.y.std()) or 1.0
        model = self._make_model(torch.tensor(data.X, dtype=torch.float64),
                                 torch.tensor((data.y - mu) / sd, dtype=torch.float64).unsqueeze(-1))
        return model, mu, sd

    def _fit(self, data: TrainingData, seed: int, warm: dict[str, Any] | None) -> Any:
        """A model fitted by marginal likelihood to ``data``, from ``warm`` hyperparameters if given."""
        from botorch.fit import fit_gpytorch_mll
        from gpytorch.mlls import ExactMarginalLogLikelihood

        # under the seed: some modules draw their initial values (gpytorch's LinearMean weights)
        with torch_seed(seed):
            model, _, _ = self._model_on(data)
            if warm is not None:
                model.load_state_dict(warm, strict=False)
            try:
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), max_attempts=2,
                                 optimizer_kwargs={"options": {"maxiter": self.fit_maxiter}})
            except Exception as e:  # noqa: BLE001 - BoTorch raises several types (ModelFittingError, NotPSD...)
                # the peer goes on with the initial hyperparameters, as a failed fit leaves them
                warnings.warn(f"{self.name}: GP fit failed on {len(data.y)} points ({type(e).__name__}: {e}); "
                              "using the initial hyperparameters", RuntimeWarning, stacklevel=3)
        return model

    def _hyperparameters(self, g: int) -> dict[str, Any] | None:
        """The fitted hyperparameters of generation ``g`` (made, with the earlier ones, on first use)."""
        while len(self._generations) <= g:
            k = len(self._generations)
            data = self.training_data(self._trials_before(self._generation_prefix(k)))
            if len(data.y) < 2:  # nothing to fit yet: this generation's picks are random
                self._generations.append(None)
                continue
            seed = int(np.random.SeedSequence([self.seed, 7, k]).generate_state(1)[0])
            warm = next((h for h in reversed(self._generations) if h is not None), None)
            if warm is not None and collapsed(warm):
                warm = None  # a dead kernel cannot come back from a warm start (see collapsed)
            model = self._fit(data, seed, warm)
            self._generations.append({name: v.detach().clone() for name, v in model.state_dict().items()})
        return self._generations[g]

    def _fitted(self, generation: int | None = None) -> tuple[Any, float, float, TrainingData] | None:
        """(model on all data now, y mean, y std, data), with the hyperparameters of ``generation``
        (default: the latest made by a pick), or ``None`` while there is no fit (the initial random
        phase: :meth:`recommend` then falls back to the best measured value). Cached per
        (generation, event count)."""
        n_model = sum(1 for t in self.trials.values() if t.replicate == 0)
        if generation is None and n_model > self.n_init:
            generation = (n_model - 1 - self.n_init) // self.refit_every
        key = (-1 if generation is None else generation, len(self.events))
        if self._model_cache is not None and self._model_cache[0] == key:
            return self._model_cache[1:]
        data = self.training_data()
        if len(data.y) < 2:
            return None
        hyper = None if generation is None else self._hyperparameters(generation)
        if hyper is None:
            return None
        model, mu, sd = self._model_on(data)
        model.load_state_dict(hyper, strict=False)
        model.eval()
        self._model_cache = (key, model, mu, sd, data)
        return model, mu, sd, data

    def _with_pending(self, model: Any, mu: float, sd: float, data: TrainingData,
                      batch: Sequence[tuple[np.ndarray, str, int]] = ()) -> Any:
        """The model with the live trials, and the suggestions already made in this batch, added as
        kriging believers (same hyperparameters)."""
        rows = [np.concatenate([self.space.encode([t.params])[0], [self.s_norm(t.steps), self.m_norm(t.size)]])
                for t in self.live_trials() if t.replicate == 0]
        rows += [np.concatenate([x, [self.s_norm(steps), self.m_norm(size)]]) for x, size, steps in batch]
        if not rows:
            return model
        import torch

        Xp = torch.tensor(np.asarray(rows), dtype=torch.float64)
        with torch.no_grad():
            believer = model.posterior(Xp).mean  # batch x 1
        X = torch.cat([torch.tensor(data.X, dtype=torch.float64), Xp])
        Y = torch.cat([torch.tensor((data.y - mu) / sd, dtype=torch.float64).unsqueeze(-1), believer])
        augmented = self._make_model(X, Y)
        augmented.load_state_dict(model.state_dict(), strict=False)
        augmented.eval()
        return augmented

    # ---------------------------------------------------------------- Scheduler
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        out: list[tuple[dict[str, Any], str, int]] = []
        batch: list[tuple[np.ndarray, str, int]] = []
        n_model = sum(1 for t in self.trials.values() if t.replicate == 0)
        for i in range(n):
            pick = n_model + i - self.n_init
            fitted = None if pick < 0 else self._fitted(pick // self.refit_every)
            if fitted is None:
                rng = self._rng(i)
                params = self.space.sample(rng, 1)[0]
                size = self.ladder.sizes[int(rng.integers(len(self.ladder.sizes)))].name
                out.append((params, size, self.step_options()[0]))
                continue
            model, mu, sd, data = fitted
            model = self._with_pending(model, mu, sd, data, batch)
            with torch_seed(int(self._rng(i, 11).integers(2**31))):
                best_f = float((data.y.min() - mu) / sd)
                x_unit, size, steps = self._select(model, best_f, iteration=pick)
            batch.append((x_unit, size, steps))
            out.append((self.space.decode(x_unit[None, :])[0], size, steps))
        return out

    def recommend(self) -> Recommendation:
        """The evaluated config with the lowest posterior mean at the target fidelity, among those that did
        not diverge (before the first fit: the base class's best measured value)."""
        fitted = self._fitted()
        # configs that diverged (FAILED) are not candidates: the GP has no data on their divergence, and its
        # mean there can be the lowest of all
        trials = [t for t in self.trials.values() if t.replicate == 0 and t.state is not TrialState.FAILED
                  and any(math.isfinite(v) for _, v in t.curve)]
        if fitted is None or not trials:
            return super().recommend()
        import torch

        model, mu, sd, _ = fitted
        x = self.space.encode([t.params for t in trials])
        s_t, m_t = self.target_fidelity
        X = torch.tensor(np.column_stack([x, np.full(len(x), s_t), np.full(len(x), m_t)]), dtype=torch.float64)
        with torch.no_grad():
            post = model.posterior(X)
            mean = post.mean.squeeze(-1).numpy() * sd + mu
            std = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy() * sd
        i = int(np.argmin(mean))
        t = trials[i]
        target = self.problem.target
        return Recommendation(dict(t.params), self._y(float(mean[i])), float(std[i]), target.size, target.steps,
                              t.trial_id, tuple(self.space.border_warnings(t.params)))

    # ---------------------------------------------------------------- extension points
    @abc.abstractmethod
    def _make_model(self, X: Any, Y: Any) -> Any:
        """An unfitted BoTorch model on ``n x (d + 2)`` inputs and ``n x 1`` standardised outputs."""

    @abc.abstractmethod
    def _select(self, model: Any, best_f: float, iteration: int) -> tuple[np.ndarray, str, int]:
        """The next (unit-cube config of ``d`` columns, size name, steps) to run. ``best_f`` is the best
        (lowest) observed value in the model's standardised units; ``iteration`` counts model-based picks."""
