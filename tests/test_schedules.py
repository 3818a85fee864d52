import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp


def tfmot(step, initial, final, begin, end, frequency, power):
    """Reference: TF-MOT PolynomialDecay, value held between pruning steps."""
    if step < begin:
        return initial
    if step >= end:
        return final
    held = begin + (step - begin) // frequency * frequency
    p = min(1.0, max(0.0, (held - begin) / (end - begin)))
    return final + (initial - final) * (1 - p) ** power


@pytest.mark.parametrize(
    "args", [(0.0, 0.9, 10, 110, 10, 3), (0.2, 0.8, 0, 50, 7, 2), (0.0, 0.5, 5, 6, 1, 1)]
)
def test_polynomial_matches_formula_at_every_step(args):
    s = jp.polynomial_schedule(*args)
    values = jax.jit(jax.vmap(s))(jnp.arange(0, 130))
    expected = [tfmot(t, *args) for t in range(130)]
    np.testing.assert_allclose(np.asarray(values), expected, rtol=1e-6, atol=1e-7)
    assert float(s(args[3])) == np.float32(args[1])  # exactly final from end_step on


def test_pruning_steps():
    s = jp.polynomial_schedule(0.0, 0.5, 10, 25, frequency=10)
    steps = [t for t in range(40) if bool(s.is_pruning_step(t))]
    assert steps == [10, 20, 25]  # end_step too, so the final sparsity is reached
    one = jp.one_shot_schedule(0.3, 7)
    assert [t for t in range(20) if bool(one.is_pruning_step(t))] == [7]
    assert float(one(6)) == 0.0 and float(one(7)) == pytest.approx(0.3)
    const = jp.constant_schedule(0.4)
    assert [t for t in range(5) if bool(const.is_pruning_step(t))] == [0]
    assert float(const(0)) == pytest.approx(0.4)


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"initial_sparsity": -0.1}, ValueError, "initial_sparsity=-0.1"),
        ({"final_sparsity": 1.5}, ValueError, "final_sparsity=1.5"),
        ({"begin_step": 5, "end_step": 2}, ValueError, "end_step=2 should not come before"),
        ({"frequency": 0}, ValueError, "frequency=0"),
        ({"begin_step": 1.5}, TypeError, "begin_step must be an int"),
        ({"power": 0}, ValueError, "power=0"),
    ],
)
def test_errors(kwargs, exc, msg):
    args = dict(initial_sparsity=0.0, final_sparsity=0.5, begin_step=0, end_step=10)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        jp.polynomial_schedule(**args)
