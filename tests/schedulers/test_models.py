"""schedulers.models: GP fitting and its fallback, the kriging believer, candidate sets, batch selection."""

from __future__ import annotations

import numpy as np
import pytest
from botorch.acquisition import LogExpectedImprovement

import schedulers.models.gp as gp_module
from schedulers import ModelFittingError
from schedulers.models import candidate_set, fit_gp, maximize_on_candidates, perturb, select_batch, sobol_points
from schedulers.models.candidates import param_slices, snap_to_space, unique_rows
from schedulers.space import ParamType, SearchSpace

from tests.schedulers.simulate import make_problem


def smooth(X):
    return np.sin(3.0 * X[:, 0]) + (X[:, 1] - 0.5) ** 2


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((20, 2))
    return X, 50.0 + 10.0 * smooth(X)       # far from zero mean / unit scale: standardisation matters


@pytest.fixture(scope="module")
def surrogate(data):
    return fit_gp(*data, seed=0)


def test_fit_predicts_a_smooth_function_in_the_callers_units(data, surrogate):
    assert surrogate.fitted and surrogate.fit_error is None
    X_test = np.random.default_rng(1).random((50, 2)) * 0.8 + 0.1
    mean, std = surrogate.predict(X_test)
    assert mean.shape == std.shape == (50,)
    rmse = float(np.sqrt(np.mean((mean - (50.0 + 10.0 * smooth(X_test))) ** 2)))
    assert rmse < 0.5                                   # the outcome spans about 14 units
    _, std_train = surrogate.predict(data[0])
    _, std_far = surrogate.predict(np.array([[3.0, 3.0]]))
    assert std_train.max() < std_far[0]
    assert surrogate.best_f == pytest.approx(surrogate.standardize(data[1].min()))


def test_same_seed_same_model(data, surrogate):
    again = fit_gp(*data, seed=0)
    X = np.random.default_rng(2).random((5, 2))
    np.testing.assert_array_equal(again.predict(X)[0], surrogate.predict(X)[0])


def test_a_failed_fit_falls_back_to_default_hyperparameters(data, monkeypatch):
    def broken(mll, **kw):
        raise RuntimeError("optimizer blew up")

    monkeypatch.setattr(gp_module, "fit_gpytorch_mll", broken)
    fallback = fit_gp(*data, seed=0)
    assert not fallback.fitted and "RuntimeError" in fallback.fit_error
    mean, std = fallback.predict(data[0])
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    assert np.corrcoef(mean, data[1])[0, 1] > 0.9       # still interpolates the data


def test_unusable_data_is_a_typed_error():
    with pytest.raises(ModelFittingError):
        fit_gp(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ModelFittingError):
        fit_gp(np.zeros((3, 0)), np.zeros(3))
    with pytest.raises(ModelFittingError):
        fit_gp(np.zeros((2, 2)), np.array([1.0, np.nan]))
    with pytest.raises(ModelFittingError):
        fit_gp(np.zeros((3, 2)), np.zeros(2))


def test_constant_and_single_observations_fit():
    one = fit_gp(np.array([[0.5, 0.5]]), np.array([3.0]), seed=0)
    assert one.predict(np.array([[0.5, 0.5]]))[0][0] == pytest.approx(3.0, abs=0.1)
    flat = fit_gp(np.random.default_rng(0).random((4, 2)), np.full(4, 2.0), seed=0)
    assert flat.predict(np.array([[0.1, 0.9]]))[0][0] == pytest.approx(2.0, abs=0.1)


def test_believer_keeps_the_mean_shrinks_the_variance_and_not_the_data(surrogate):
    x = np.array([[0.95, 0.05]])
    mean0, std0 = surrogate.predict(x)
    believed = surrogate.believe(x)
    mean1, std1 = believed.predict(x)
    assert mean1[0] == pytest.approx(mean0[0], abs=1e-6)
    assert std1[0] < 0.8 * std0[0]
    assert believed.n == surrogate.n and believed.best_f == surrogate.best_f
    assert believed.pending_X.shape == (1, 2)
    assert surrogate.predict(x)[1][0] == pytest.approx(std0[0])    # the original is untouched


@pytest.fixture(scope="module")
def space():
    return make_problem().space


def test_sobol_points_are_snapped_valid_encodings(space):
    X = sobol_points(space, 64, np.random.default_rng(0))
    assert X.shape == (64, space.dim) and ((0 <= X) & (X <= 1)).all()
    np.testing.assert_allclose(snap_to_space(space, X), X)
    for config in space.decode(X):
        space.validate(config)
    mix = dict(param_slices(space))[ParamType.MIXTURE]
    np.testing.assert_allclose(X[:, mix].sum(axis=1), 1.0)
    # quasi-random coverage: every choice of the categorical shows up
    assert {c["optimizer"] for c in space.decode(X)} == {"adam", "sgd"}


def test_perturbations_stay_near_their_centre(space):
    rng = np.random.default_rng(0)
    centre = sobol_points(space, 1, rng)
    near = perturb(space, centre, 200, rng, scale=0.02)
    assert near.shape == (200, space.dim)
    lr_col = 0                                             # 'lr' is the first searched parameter
    assert np.abs(near[:, lr_col] - centre[0, lr_col]).max() < 0.15
    for config in space.decode(near):
        space.validate(config)


def test_mixture_perturbations_leave_a_vertex_and_reach_the_faces_of_the_simplex():
    # the datamix target optimum lies on an edge (72% / 28% of two components); a local search started
    # at a vertex must be able to move weight to a component at 0 and to set components exactly to 0
    space = SearchSpace.from_dicts([{"name": "mix", "type": "mixture", "components": list("abcde")}])
    vertex = space.encode([{"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0, "e": 0.0}])
    near = perturb(space, vertex, 400, np.random.default_rng(0), scale=0.1)
    np.testing.assert_allclose(near.sum(axis=1), 1.0)
    assert (near >= 0).all()
    nonzero = (near > 1e-9).sum(axis=1)
    assert (near[:, 0] > 0.05).any()                       # weight reaches a component that was 0
    assert ((nonzero >= 2) & (nonzero < 5)).any()          # points on faces: some components exactly 0
    assert (near[:, 1] > 0.5).mean() > 0.5                 # and most stay near the vertex
    steps = np.abs(near - vertex).sum(axis=1)
    assert np.quantile(steps, 0.1) < 0.5 * np.quantile(steps, 0.9)   # fine and coarse moves alike


def test_candidate_set_has_global_and_local_rows_without_duplicates(space):
    rng = np.random.default_rng(0)
    incumbents = sobol_points(space, 2, rng)
    cands = candidate_set(space, rng, n_global=100, incumbents=incumbents, n_local=50, scale=0.01)
    assert len(cands) == len(unique_rows(cands)) and 100 <= len(cands) <= 200
    dist = np.abs(cands[:, None, :] - incumbents[None]).max(axis=-1).min(axis=1)
    assert (dist < 0.1).sum() >= 50                        # a neighbourhood around the incumbents


def test_acquisition_maximisation_and_batches_exclude_known_points(data, surrogate):
    space = make_problem(space=[{"name": "a", "type": "float", "low": 0.0, "high": 1.0},
                                {"name": "b", "type": "float", "low": 0.0, "high": 1.0}]).space
    rng = np.random.default_rng(0)
    cands = candidate_set(space, rng, n_global=256, incumbents=data[0][np.argsort(data[1])[:3]])

    def logei(s):
        return LogExpectedImprovement(s.model, s.best_f, maximize=False)

    best, value = maximize_on_candidates(logei(surrogate), space, cands, rng)
    assert np.isfinite(value)
    batch = select_batch(surrogate, 4, logei, space, cands, rng, exclude=best[None])
    assert batch.shape == (4, 2)
    assert len(unique_rows(np.concatenate([batch, best[None]]))) == 5
    # everything excluded: nothing to propose
    assert maximize_on_candidates(logei(surrogate), space, cands[:3], rng, exclude=cands[:3],
                                  refine_top=0) is None
