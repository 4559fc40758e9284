"""schedulers.space: parsing, sampling, the unit-cube encoding, conditionals, mixtures, validation."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers import InvalidSpaceError, SearchSpace

from tests.schedulers.simulate import MIXED_SPACE

# encoded widths: lr 1, layers 1, optimizer 2 (one-hot), momentum 1, mix 3, batch_size 1; seq_len is fixed
DIM = 9


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_dicts(MIXED_SPACE)


def test_dimension_and_searched_parameters(space):
    assert space.dim == DIM
    assert [p.name for p in space.searched] == ["lr", "layers", "optimizer", "momentum", "mix", "batch_size"]


def test_encode_decode_round_trip(space):
    configs = space.sample(np.random.default_rng(0), 200)
    X = space.encode(configs)
    assert X.shape == (200, DIM) and ((0 <= X) & (X <= 1)).all()
    back = space.decode(X)
    for c, b in zip(configs, back):
        assert set(c) == set(b)
        for k, v in c.items():
            if isinstance(v, float):
                assert b[k] == pytest.approx(v, rel=1e-9, abs=1e-12)
            else:
                assert b[k] == v
    np.testing.assert_allclose(space.encode(back), X, atol=1e-12)


def test_log_scale_encoding_is_linear_in_the_log(space):
    x = space.encode([{"lr": 1e-2, "layers": 1, "optimizer": "adam", "web": 1.0, "code": 0.0, "books": 0.0,
                       "batch_size": 16, "seq_len": 128}])
    assert x[0, 0] == pytest.approx(0.5)             # 1e-2 is midway between 1e-4 and 1 in log10
    assert x[0, 1] == 0.0 and x[0, 8] == 0.0          # lowest int and first ordinal value
    np.testing.assert_array_equal(x[0, 2:4], [1.0, 0.0])   # one-hot 'adam'


def test_mixtures_live_on_the_simplex(space):
    for c in space.sample(np.random.default_rng(1), 100):
        w = [c["web"], c["code"], c["books"]]
        assert min(w) >= 0 and sum(w) == pytest.approx(1.0)
    x = np.full((2, DIM), 0.5)
    x[0, 5:8] = [-1.0, 3.0, 1.0]                     # negative and unnormalised: clipped and renormalised
    x[1, 5:8] = [0.0, 0.0, 0.0]                      # degenerate: uniform
    a, b = space.decode(x)
    assert (a["web"], a["code"], a["books"]) == pytest.approx((0.0, 0.75, 0.25))
    assert (b["web"], b["code"], b["books"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_conditional_parameters_appear_only_under_their_parent(space):
    configs = space.sample(np.random.default_rng(2), 100)
    for c in configs:
        assert ("momentum" in c) == (c["optimizer"] == "sgd")
        assert c["seq_len"] == 128                       # fixed parameters always take their value
    adam = next(c for c in configs if c["optimizer"] == "adam")
    assert space.encode([adam])[0, 4] == 0.5             # inactive: the neutral middle
    space.validate(adam)                                 # no momentum needed
    sgd = next(c for c in configs if c["optimizer"] == "sgd")
    missing = {k: v for k, v in sgd.items() if k != "momentum"}
    with pytest.raises(InvalidSpaceError) as e:
        space.validate(missing)
    assert e.value.field == "momentum"


@pytest.mark.parametrize("change, field", [
    ({"lr": 2.0}, "lr"),
    ({"layers": 0}, "layers"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"batch_size": 48}, "batch_size"),
    ({"web": 0.9}, "mix"),                              # components no longer sum to 1
    ({"web": -0.1, "code": 1.1}, "mix"),
])
def test_validation_names_the_offending_field(space, change, field):
    config = {"lr": 1e-2, "layers": 2, "optimizer": "adam", "web": 0.2, "code": 0.3, "books": 0.5,
              "batch_size": 32, "seq_len": 128}
    space.validate(config)
    with pytest.raises(InvalidSpaceError) as e:
        space.validate({**config, **change})
    assert e.value.field == field and field in e.value.message


def test_validation_requires_every_active_key(space):
    with pytest.raises(InvalidSpaceError) as e:
        space.validate({"lr": 1e-2, "layers": 2, "optimizer": "adam", "web": 0.5, "code": 0.5,
                        "batch_size": 32, "seq_len": 128})
    assert e.value.field == "books"


@pytest.mark.parametrize("raw, field", [
    ([], "space"),
    ([{"type": "float", "low": 0, "high": 1}], "name"),
    ([{"name": "x", "type": "complex"}], "x.type"),
    ([{"name": "x", "type": "float", "low": 0}], "x"),
    ([{"name": "x", "type": "float", "low": 2, "high": 1}], "x.low"),
    ([{"name": "x", "type": "float", "low": 0, "high": 1, "log": True}], "x.low"),
    ([{"name": "x", "type": "float", "low": 0, "high": float("inf")}], "x"),
    ([{"name": "c", "type": "categorical", "choices": ["a", "a"]}], "c"),
    ([{"name": "o", "type": "ordinal", "values": []}], "o"),
    ([{"name": "m", "type": "mixture", "components": ["a"]}], "m.components"),
    ([{"name": "m", "type": "mixture", "components": ["a", "a"]}], "m"),
    ([{"name": "f", "type": "fixed"}], "f"),
    ([{"name": "x", "type": "int", "low": 0, "high": 3, "role": "fixed"}], "x"),
    ([{"name": "x", "type": "int", "low": 0, "high": 3}, {"name": "x", "type": "int", "low": 0, "high": 3}], "x"),
    ([{"name": "a", "type": "mixture", "components": ["a", "b"]}, {"name": "b", "type": "int", "low": 0,
                                                                    "high": 1}], "b"),
    ([{"name": "m", "type": "float", "low": 0, "high": 1, "condition": {"parent": "opt", "values": ["sgd"]}}],
     "m.condition"),
    ([{"name": "lr", "type": "float", "low": 0.1, "high": 1},
      {"name": "m", "type": "float", "low": 0, "high": 1, "condition": {"parent": "lr", "values": [0.5]}}],
     "m.condition"),
])
def test_malformed_spaces_name_the_offending_field(raw, field):
    with pytest.raises(InvalidSpaceError) as e:
        SearchSpace.from_dicts(raw)
    assert e.value.field == field


def test_dicts_round_trip(space):
    again = SearchSpace.from_dicts(space.to_dicts())
    assert again.dim == space.dim and again.to_dicts() == space.to_dicts()
    configs = space.sample(np.random.default_rng(3), 20)
    np.testing.assert_array_equal(again.encode(configs), space.encode(configs))


def test_any_point_of_the_cube_decodes_to_a_valid_config(space):
    X = np.random.default_rng(4).uniform(-0.5, 1.5, size=(200, DIM))   # even outside the cube
    for c in space.decode(X):
        space.validate(c)


def test_border_warnings(space):
    base = {"lr": 1e-2, "layers": 2, "optimizer": "sgd", "momentum": 0.7, "web": 0.2, "code": 0.3,
            "books": 0.5, "batch_size": 32, "seq_len": 128}
    assert space.border_warnings(base) == []
    low = space.border_warnings({**base, "lr": 1.2e-4})
    assert len(low) == 1 and low[0].startswith("lr=") and "lower border" in low[0]
    high = space.border_warnings({**base, "momentum": 0.99, "layers": 4})
    assert [w.split("=")[0] for w in high] == ["layers", "momentum"] and all("upper" in w for w in high)
    inactive = {k: v for k, v in base.items() if k != "momentum"} | {"optimizer": "adam"}
    assert space.border_warnings(inactive) == []
