import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxprune as jp


def problem(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = {
        "Dense_0": {"kernel": jax.random.normal(k1, (8, 16)), "bias": jnp.zeros(16)},
        "Dense_1": {"kernel": jax.random.normal(k2, (16, 4)), "bias": jnp.zeros(4)},
    }
    x = jax.random.normal(k3, (32, 8))
    y = jnp.sin(x[:, :4])

    def loss(p):
        h = jnp.tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return jnp.mean((h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"] - y) ** 2)

    return params, loss


OPTIMIZERS = {
    "sgd-momentum": lambda: optax.sgd(0.05, momentum=0.9),
    "sgd-nesterov": lambda: optax.sgd(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optax.adam(1e-2),
    "adamw-wd": lambda: optax.adamw(1e-2, weight_decay=0.5),
    "lion": lambda: optax.lion(1e-3, weight_decay=0.1),
    "chain-clip-schedule": lambda: optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.scale_by_adam(),
        optax.scale_by_schedule(optax.cosine_decay_schedule(1e-2, 200)),
        optax.scale(-1.0),
    ),
    "multisteps": lambda: optax.MultiSteps(optax.adam(1e-2), every_k_schedule=3),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_pruned_weights_stay_exactly_zero_for_200_steps(name):
    params, loss = problem()
    masks = jp.prune(params, "random_unstructured", key=jax.random.key(1), amount=0.5)
    # Params deliberately not masked before training: the first update zeroes them.
    tx = jp.keep_pruned(OPTIMIZERS[name](), masks)
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    start = loss(jp.apply_masks(params, masks))
    for _ in range(200):
        params, state = step(params, state)
        for path in ("Dense_0", "Dense_1"):
            w, m = params[path]["kernel"], masks[path]["kernel"]
            assert not bool(jnp.any(jnp.where(m, 0.0, w) != 0.0))
    assert float(loss(params)) < float(start)  # the kept weights still train
    assert int((~masks["Dense_0"]["kernel"]).sum()) == int((params["Dense_0"]["kernel"] == 0).sum())


def test_moments_do_not_leak_when_masks_change():
    params, loss = problem()
    full = jax.tree.map(lambda x: jnp.ones((), bool), params)
    tx = jp.keep_pruned(optax.adam(1e-1), full)
    state = tx.init(params)
    for _ in range(5):  # build up moments everywhere
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    masks = jp.prune(params, "l1_unstructured", amount=0.5, where="kernel")
    params = jp.apply_masks(params, masks)
    state = jp.KeepPrunedState(inner=state.inner, masks=masks)
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    adam_state = state.inner[0]
    for moments in (adam_state.mu, adam_state.nu):
        m = masks["Dense_0"]["kernel"]
        assert not bool(jnp.any(jnp.where(m, 0.0, moments["Dense_0"]["kernel"]) != 0))
    # Reviving a unit later starts it from clean moments.
    state = jp.KeepPrunedState(inner=state.inner, masks=full)
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
    m = masks["Dense_0"]["kernel"]
    assert not bool(jnp.any(jnp.where(m, 0.0, updates["Dense_0"]["kernel"]) != 0))


def test_keep_pruned_requires_params_and_matching_masks():
    params, _ = problem()
    tx = jp.keep_pruned(optax.sgd(0.1), jp.prune(params, "l1_unstructured", amount=0.5))
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs the params"):
        tx.update(params, state)
    with pytest.raises(ValueError, match="Dense_1/bias: masks has no leaf"):
        jp.keep_pruned(optax.sgd(0.1), {"Dense_0": params["Dense_0"]}).init(params)


def test_nnx_optimizer_with_pure_state_masks():
    model = nnx.Sequential(nnx.Linear(4, 6, rngs=nnx.Rngs(0)), nnx.Linear(6, 2, rngs=nnx.Rngs(1)))
    masks = jp.prune(
        nnx.state(model, nnx.Param), "random_structured", key=jax.random.key(0), amount=0.5
    )
    opt = nnx.Optimizer(model, jp.keep_pruned(optax.adam(0.1), masks), wrt=nnx.Param)
    x = jnp.ones((3, 4))

    @nnx.jit
    def step(model, opt):
        opt.update(model, nnx.grad(lambda m: (m(x) ** 2).sum())(model))

    for _ in range(20):
        step(model, opt)
    kernel = model.layers[0].kernel[...]
    dead = ~np.asarray(masks["layers"][0]["kernel"][...]).reshape(-1)
    assert dead.sum() == 3 and (np.asarray(kernel)[:, dead] == 0).all()
    assert (np.asarray(kernel)[:, ~dead] != 0).all()


def test_gradual_pruning_follows_the_schedule_without_recompiling():
    params, loss = problem()
    schedule = jp.polynomial_schedule(0.0, 0.75, begin_step=10, end_step=50, frequency=10)
    tx = jp.gradual_pruning(
        optax.adam(1e-2), "ln_structured", schedule, n=2, dim=-1, where="kernel"
    )
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    previous = jp.current_masks(state)
    for t in range(60):
        params, state = step(params, state)
        masks = jp.current_masks(state)
        target = float(schedule(t))
        for path, units in (("Dense_0", 16), ("Dense_1", 4)):
            m = masks[path]["kernel"]
            assert m.shape == (1, units)
            if bool(schedule.is_pruning_step(t)):
                assert int((~m).sum()) == round(np.float32(target) * units)
            assert not bool(jnp.any(m & ~previous[path]["kernel"]))  # never revived
            w = params[path]["kernel"]
            assert not bool(jnp.any(jnp.where(m, 0.0, w) != 0))
        previous = masks
    assert len(traces) == 1
    assert int((~masks["Dense_0"]["kernel"]).sum()) == 12


def test_gradual_random_uses_step_keys_and_is_deterministic():
    params, loss = problem()
    schedule = jp.polynomial_schedule(0.0, 0.5, 0, 4)

    def run():
        tx = jp.gradual_pruning(
            optax.sgd(0.01), "random_unstructured", schedule, key=jax.random.key(3), where="kernel"
        )
        p, state = params, tx.init(params)
        for _ in range(6):
            updates, state = tx.update(jax.grad(loss)(p), state, p)
            p = optax.apply_updates(p, updates)
        return jp.current_masks(state)

    a, b = run(), run()
    np.testing.assert_array_equal(a["Dense_0"]["kernel"], b["Dense_0"]["kernel"])
    assert int((~a["Dense_0"]["kernel"]).sum()) == 64


def test_gradual_pruning_errors():
    with pytest.raises(TypeError, match="random_structured needs key="):
        jp.gradual_pruning(optax.sgd(0.1), "random_structured", jp.constant_schedule(0.5))
    with pytest.raises(TypeError, match="takes no key"):
        jp.gradual_pruning(
            optax.sgd(0.1), "l1_unstructured", jp.constant_schedule(0.5), key=jax.random.key(0)
        )
    with pytest.raises(TypeError, match="unexpected argument 'amount'"):
        jp.gradual_pruning(optax.sgd(0.1), "l1_unstructured", jp.constant_schedule(0.5), amount=0.3)
    with pytest.raises(ValueError, match="selects nothing"):
        jp.gradual_pruning(optax.sgd(0.1), "identity", jp.constant_schedule(0.5))
    with pytest.raises(ValueError, match="no gradual_pruning or keep_pruned state"):
        jp.current_masks(optax.sgd(0.1).init({"w": jnp.ones(2)}))


def test_python_bool_mask_leaves_work_as_in_apply_masks():
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
    masks = {"w": jnp.array([True, False]), "b": True}
    tx = jp.keep_pruned(optax.sgd(0.1), masks)
    state = tx.init(params)
    updates, _ = tx.update({"w": jnp.ones(2), "b": jnp.ones(1)}, state, params)
    new = optax.apply_updates(params, updates)
    assert new["w"].tolist() == [pytest.approx(0.9), 0.0]
    assert new["b"].tolist() == [pytest.approx(2.9)]
    assert jp.apply_masks(params, masks)["b"] is params["b"]


def test_non_finite_pruned_entries_reach_zero_once_masked_first():
    # An update cannot zero NaN or inf (p + (-p) is NaN): as the docstring says, masked once
    # with apply_masks they are +0.0 and stay exactly zero.
    params = {"w": jnp.array([jnp.nan, jnp.inf, -jnp.inf, 1.0])}
    masks = {"w": jnp.array([False, False, False, True])}
    tx = jp.keep_pruned(optax.adam(0.1), masks)
    raw = optax.apply_updates(params, tx.update({"w": jnp.ones(4)}, tx.init(params), params)[0])
    assert bool(jnp.isnan(raw["w"][:3]).all())
    params = jp.apply_masks(params, masks)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update({"w": jnp.full(4, jnp.nan)}, state, params)
        params = optax.apply_updates(params, updates)
    assert params["w"][:3].tolist() == [0.0, 0.0, 0.0]
    assert not bool(jnp.signbit(params["w"][:3]).any())
