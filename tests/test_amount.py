import re

import jax.numpy as jnp
import numpy as np
import pytest
import torch.nn.utils.prune as tprune
from hypothesis import given
from hypothesis import strategies as st

from jaxprune import _amount


@pytest.mark.parametrize("amount", [0, 3, 0.0, 0.5, 1.0, True, np.int64(2), np.float32(0.25)])
def test_valid_amounts_pass_through(amount):
    out = _amount.check_amount(amount)
    assert out == amount
    assert isinstance(out, int if isinstance(amount, (int, np.integer)) else float)


@pytest.mark.parametrize("amount", ["0.3", None, [0.1], 1 + 2j])
def test_non_numbers_are_type_errors(amount):
    with pytest.raises(TypeError, match=re.escape(f"Invalid type for amount: {amount!r}")):
        _amount.check_amount(amount)


@pytest.mark.parametrize("amount", [-1, -0.1, 1.1, float("nan"), float("inf")])
def test_out_of_range_amounts_are_value_errors(amount):
    with pytest.raises(ValueError, match=re.escape(f"amount={amount} should either be")):
        _amount.check_amount(amount)


def test_torch_agrees_on_what_is_invalid():
    # torch lets a NaN amount through its first check and fails later in round(); jaxprune
    # rejects it up front with the same exception type.
    with pytest.raises(ValueError):
        tprune._compute_nparams_toprune(float("nan"), 10)
    for amount in [-1, -0.1, 1.1, float("nan")]:
        if amount == amount:
            with pytest.raises(ValueError):
                tprune._validate_pruning_amount_init(amount)
        with pytest.raises(ValueError):
            _amount.check_amount(amount)
    with pytest.raises(TypeError):
        tprune._validate_pruning_amount_init("0.3")


def test_array_amounts_are_traced_amounts():
    a = jnp.float32(0.3)
    assert _amount.check_amount(a) is a
    with pytest.raises(TypeError, match="scalar"):
        _amount.check_amount(jnp.ones(2))
    with pytest.raises(TypeError, match="dtype bool"):
        _amount.check_amount(jnp.array(True))


@given(st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_float_count_is_torchs_rounding(amount, units):
    assert _amount.exact_count(amount, units, "x") == tprune._compute_nparams_toprune(amount, units)


@given(st.integers(0, 200), st.integers(0, 200))
def test_int_count_and_torchs_bound(amount, units):
    if amount > units:
        with pytest.raises(ValueError, match=f"amount={amount} should be smaller"):
            _amount.exact_count(amount, units, "x")
        with pytest.raises(ValueError):
            tprune._validate_pruning_amount(amount, units)
    else:
        assert _amount.exact_count(amount, units, "x") == amount


@pytest.mark.parametrize(
    "amount,units,expected", [(0.5, 5, 2), (0.5, 7, 4), (0.25, 2, 0), (0.1, 5, 0), (0.3, 5, 2)]
)
def test_half_to_even_cases(amount, units, expected):
    assert _amount.exact_count(amount, units, "x") == expected == round(amount * units)


def test_traced_count_rounds_half_to_even_and_clamps():
    n = jnp.uint32(5)
    assert int(_amount.traced_count(jnp.float32(0.5), n, 1 << 20)) == 2
    assert int(_amount.traced_count(jnp.float32(0.7), n, 1 << 20)) == 4
    assert int(_amount.traced_count(jnp.int32(9), n, 1 << 20)) == 5
    assert int(_amount.traced_count(jnp.float32(2.0), n, 1 << 20)) == 5
    assert int(_amount.traced_count(jnp.float32(-1.0), n, 1 << 20)) == 0


def test_python_float_with_traced_units_uses_exact_table():
    # 0.1 * 5 == 0.5 in double precision, which Python rounds to 0.
    for units in range(0, 40):
        got = int(_amount.traced_count(0.1, jnp.uint32(units), 64))
        assert got == round(0.1 * units)
