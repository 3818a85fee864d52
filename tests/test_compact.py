"""Physical compaction: the smaller model computes what the masked one computes, channels go
only where every path allows, constants fold into the next bias, and every refusal says why."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp


def _close(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(b).max()))


def _mlp_params(key, sizes=(6, 16, 12, 3)):
    keys = jax.random.split(key, 2 * len(sizes))
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"l{i}"] = {
            "w": jax.random.normal(keys[2 * i], (a, b)) / np.sqrt(a),
            "b": 0.5 * jax.random.normal(keys[2 * i + 1], (b,)),  # nonzero: constants fold
        }
    return p


def _mlp(p, x):
    n = len(p)
    for i in range(n):
        x = x @ p[f"l{i}"]["w"] + p[f"l{i}"]["b"]
        if i < n - 1:
            x = jax.nn.gelu(x)
    return x


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("random_structured", {"key": jax.random.key(0), "amount": 0.3}),
        ("random_structured", {"key": jax.random.key(1), "amount": 0.5}),
        ("random_structured", {"key": jax.random.key(2), "amount": 0.7}),
        ("ln_structured", {"amount": 0.5, "n": 2}),
        ("ln_structured", {"amount": 0.7, "n": 1}),
    ],
)
def test_an_mlp_loses_every_pruned_hidden_channel_and_computes_the_same(method, kwargs):
    params = _mlp_params(jax.random.key(5))
    masks = jp.prune(params, method, dim=-1, where=r"l[01]/w", **kwargs)
    dead = [int((~np.asarray(masks[f"l{i}"]["w"])).sum()) for i in (0, 1)]
    x = jax.random.normal(jax.random.key(9), (8, 6))
    fn, small, report = jp.compact(_mlp, params, masks, x)
    # every pruned hidden channel goes: its constant gelu(b) folds into the next bias
    assert small["l0"]["w"].shape == (6, 16 - dead[0])
    assert small["l1"]["w"].shape == (16 - dead[0], 12 - dead[1])
    assert small["l2"]["w"].shape == (12 - dead[1], 3)
    assert small["l0"]["b"].shape == (16 - dead[0],)
    assert report.params_after == sum(x.size for x in jax.tree.leaves(small))
    h0, h1 = 16 - dead[0], 12 - dead[1]
    assert report.flops_before == 2 * 8 * (6 * 16 + 16 * 12 + 12 * 3)
    assert report.flops_after == 2 * 8 * (6 * h0 + h0 * h1 + h1 * 3)
    rows = {r.path: r for r in report.layers}
    assert (rows["l1/w"].flops_before, rows["l1/w"].flops_after) == (
        2 * 8 * 16 * 12,
        2 * 8 * h0 * h1,
    )
    assert rows["l1/b"].flops_before == 0 and rows["l1/b"].shape_after == (h1,)
    assert report.kept == []
    masked = jp.apply_masks(params, masks)
    for batch in (8, 3):  # other input shapes too, and under jit
        x = jax.random.normal(jax.random.key(batch), (batch, 6))
        _close(fn(small, x), _mlp(masked, x))
        _close(jax.jit(fn)(small, x), _mlp(masked, x))


def test_a_removed_channels_constant_folds_exactly_into_the_next_bias():
    params = {
        "w1": jnp.array([[1.0, 2.0, 3.0]]),
        "b1": jnp.array([0.0, 0.7, 0.0]),
        "w2": jnp.array([[1.0, 1.0], [2.0, -1.0], [0.5, 0.5]]),
        "b2": jnp.array([10.0, 20.0]),
    }
    masks = {"w1": jnp.array([[True, False, True]]), "b1": True, "w2": True, "b2": True}

    def f(p, x):
        return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    fn, small, _ = jp.compact(f, params, masks, jnp.ones((2, 1)))
    np.testing.assert_allclose(small["w2"], [[1.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(small["b2"], [10.0 + 0.7 * 2.0, 20.0 - 0.7])
    np.testing.assert_allclose(small["b1"], [0.0, 0.0])


def test_residual_channels_go_only_where_every_producer_lost_them():
    k = jax.random.split(jax.random.key(0), 3)
    params = {
        "a": jax.random.normal(k[0], (4, 6)),
        "b": jax.random.normal(k[1], (4, 6)),
        "c": jax.random.normal(k[2], (6, 2)),
    }
    dead_a, dead_b = [0, 1, 2], [1, 2, 3]
    masks = {
        "a": jnp.ones((1, 6), bool).at[0, jnp.array(dead_a)].set(False),
        "b": jnp.ones((1, 6), bool).at[0, jnp.array(dead_b)].set(False),
        "c": True,
    }

    def f(p, x):
        return jax.nn.relu(x @ p["a"] + x @ p["b"]) @ p["c"]

    x = jax.random.normal(jax.random.key(1), (5, 4))
    fn, small, _ = jp.compact(f, params, masks, x)
    keep = [0, 3, 4, 5]  # 1 and 2: lost by both; 0 and 3 live in one of them
    np.testing.assert_array_equal(
        small["a"], np.asarray(jp.apply_masks(params, masks)["a"])[:, keep]
    )
    np.testing.assert_array_equal(small["c"], np.asarray(params["c"])[keep])
    _close(fn(small, x), f(jp.apply_masks(params, masks), x))


def _cnn():
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(16, (3, 3))(x)))
            y = nn.BatchNorm(use_running_average=True)(nn.Conv(16, (3, 3))(y))
            return nn.relu(x + y)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(16, (3, 3))(x)))
            x = Block()(x)
            x = nn.relu(nn.Conv(24, (3, 3), padding="VALID")(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = x.reshape((x.shape[0], -1))
            x = nn.gelu(nn.Dense(32)(x))
            return nn.Dense(10)(x)

    model = CNN()
    x = jax.random.normal(jax.random.key(1), (4, 10, 10, 3))
    variables = model.init(jax.random.key(0), x)
    noise = jax.random.split(jax.random.key(2), len(jax.tree.leaves(variables)))
    leaves, treedef = jax.tree.flatten(variables)
    leaves = [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, noise)]
    variables = jax.tree.unflatten(treedef, leaves)
    variables["batch_stats"] = jax.tree.map(jnp.abs, variables["batch_stats"])
    return model, variables, x


@pytest.mark.parametrize("seed, amount", [(0, 0.3), (1, 0.5), (2, 0.7)])
def test_a_cnn_with_batchnorm_residuals_and_pooling_computes_the_same(seed, amount):
    model, variables, x = _cnn()

    def apply(v, x):
        return model.apply(v, x)

    where = r"params/(Conv_\d|Block_0/Conv_\d|Dense_0)/kernel"
    masks = jp.prune(
        variables, "random_structured", key=jax.random.key(seed), amount=amount, dim=-1, where=where
    )
    fn, small, report = jp.compact(apply, variables, masks, x)
    masked = jp.apply_masks(variables, masks)
    x2 = jax.random.normal(jax.random.key(7), (3, 10, 10, 3))
    _close(fn(small, x), apply(masked, x))
    _close(jax.jit(fn)(small, x2), apply(masked, x2))
    # the unpadded conv and the dense layer lose every pruned channel (constants fold)
    dead = int((~np.asarray(masks["params"]["Dense_0"]["kernel"])).sum())
    assert small["params"]["Dense_0"]["kernel"].shape[1] == 32 - dead
    dead = int((~np.asarray(masks["params"]["Conv_1"]["kernel"])).sum())
    assert small["params"]["Conv_1"]["kernel"].shape[-1] == 24 - dead
    # BatchNorm's statistics are sliced with their channels
    bn = small["batch_stats"]["BatchNorm_0"]["mean"].shape[0]
    assert small["params"]["Conv_0"]["kernel"].shape[-1] == bn
    assert report.params_after < report.params_before
    assert report.flops_after < report.flops_before
    # constant channels entering a padded convolution stay, and the report says so
    assert any("padded convolution" in line for line in report.kept)


def _transformer():
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32)(h, h)
            h = nn.LayerNorm()(x)
            return x + nn.Dense(16, name="fc2")(nn.gelu(nn.Dense(64, name="fc1")(h)))

    model = Block()
    x = jax.random.normal(jax.random.key(1), (2, 5, 16))
    v = model.init(jax.random.key(0), x)
    leaves, treedef = jax.tree.flatten(v)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    v = jax.tree.unflatten(
        treedef, [a + 0.1 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)]
    )
    return model, v, x


@pytest.mark.parametrize("heads", [(0,), (1, 3), (0, 1, 2)])
def test_a_transformer_block_loses_whole_heads_and_mlp_channels(heads):
    model, v, x = _transformer()
    attn = "MultiHeadDotProductAttention_0"
    head_mask = jnp.ones((1, 4, 1), bool).at[0, jnp.array(heads), 0].set(False)
    masks = jp.prune(v, "ln_structured", amount=0.5, n=2, dim=-1, where="params/fc1/kernel")
    for name in ("query", "key", "value"):
        masks["params"][attn][name] = {"kernel": head_mask, "bias": head_mask[0]}

    def apply(p, x):
        return model.apply(p, x)

    fn, small, report = jp.compact(apply, v, masks, x)
    left = 4 - len(heads)
    for name in ("query", "key", "value"):
        assert small["params"][attn][name]["kernel"].shape == (16, left, 8)
        assert small["params"][attn][name]["bias"].shape == (left, 8)
    assert small["params"][attn]["out"]["kernel"].shape == (left, 8, 16)
    assert small["params"]["fc1"]["kernel"].shape == (16, 32)
    assert small["params"]["fc2"]["kernel"].shape == (32, 16)
    _close(fn(small, x), apply(jp.apply_masks(v, masks), x))
    x3 = jax.random.normal(jax.random.key(4), (3, 7, 16))  # other batch and length
    _close(fn(small, x3), apply(jp.apply_masks(v, masks), x3))


def _ln(x):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-6)


REFUSALS = {
    "layernorm": (
        lambda p, x: _ln(x @ p["a"]) @ p["b"],
        "a reduction over the channel axis",
    ),
    "output": (lambda p, x: jax.nn.relu(x @ p["a"]), "the function's output"),
    "heads split": (
        lambda p, x: (x @ p["a"]).reshape(x.shape[0], 2, 4).sum(1) @ p["b"][:4],
        "a reshape that splits the channels",
    ),
    "no bias": (
        lambda p, x: jax.nn.sigmoid(x @ p["a"]) @ p["b"],
        "a layer with no bias after it",
    ),
    "mixed with the input": (
        lambda p, x: (x @ p["a"] + jnp.tile(x, (1, 2))) @ p["b"],
        "an activation that keeps every channel",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_channels_that_cannot_go_stay_and_the_report_names_the_operation(case):
    f, reason = REFUSALS[case]
    k = jax.random.split(jax.random.key(0), 2)
    params = {"a": jax.random.normal(k[0], (4, 8)), "b": jax.random.normal(k[1], (8, 3))}
    masks = {"a": jnp.ones((1, 8), bool).at[0, :3].set(False), "b": True}
    x = jax.random.normal(jax.random.key(2), (5, 4))
    fn, small, report = jp.compact(f, params, masks, x)
    assert small["a"].shape == (4, 8)
    assert len(report.kept) == 1 and reason in report.kept[0], report.kept
    assert report.kept[0].startswith("3 of 8 pruned channels of a kept")
    _close(fn(small, x), f(jp.apply_masks(params, masks), x))


def test_depthwise_and_padded_convolutions_keep_their_channels_exactly():
    import flax.linen as nn

    class Net(nn.Module):
        depthwise: bool

        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            groups = 8 if self.depthwise else 1
            return nn.Conv(8, (3, 3), feature_group_count=groups)(x)

    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
    for depthwise, reason in ((True, "grouped convolution"), (False, "padded convolution")):
        model = Net(depthwise)
        v = model.init(jax.random.key(1), x)
        v["params"]["Conv_0"]["bias"] = jnp.full(8, 0.5)  # relu(0.5): a constant channel
        masks = jp.prune(v, "ln_structured", amount=3, n=2, dim=-1, where="Conv_0/kernel")
        fn, small, report = jp.compact(model.apply, v, masks, x)
        assert small["params"]["Conv_0"]["kernel"].shape[-1] == 8
        assert any(reason in line for line in report.kept), report.kept
        _close(fn(small, x), model.apply(jp.apply_masks(v, masks), x))


def test_compact_params_round_trip_through_orbax(tmp_path):
    import orbax.checkpoint as ocp

    params = _mlp_params(jax.random.key(1))
    masks = jp.prune(params, "ln_structured", amount=0.5, n=2, dim=-1, where=r"l[01]/w")
    x = jax.random.normal(jax.random.key(0), (4, 6))
    fn, small, _ = jp.compact(_mlp, params, masks, x)
    path = tmp_path / "compact"
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path, small)
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(
            path, jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), small)
        )
    _close(fn(restored, x), fn(small, x))


def test_nnx_compact_keeps_classes_names_and_trains():
    import optax
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 16, (3, 3), padding="VALID", rngs=rngs)
            self.bn = nnx.BatchNorm(16, rngs=rngs)
            self.fc1 = nnx.Linear(16 * 4 * 4, 32, rngs=rngs)
            self.fc2 = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.bn(self.conv(x)))
            x = x.reshape((x.shape[0], -1))
            return self.fc2(nnx.relu(self.fc1(x)))

    model = Net(nnx.Rngs(0))
    model.eval()
    jp.nnx.prune(model, "ln_structured", amount=0.5, n=2, dim=-1, where="conv/kernel|fc1/kernel")
    jp.nnx.prune(model, "l1_unstructured", amount=0.3, where="fc2/kernel")  # stays a mask
    before = jax.tree.map(jnp.copy, nnx.state(model))
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))
    small, report = jp.nnx.compact(model, x)
    jax.tree.map(np.testing.assert_array_equal, nnx.state(model), before)  # untouched
    assert type(small.conv).__name__ == type(model.conv).__name__
    assert small.conv.out_features == 8 and small.bn.num_features == 8
    assert small.fc1.in_features == 8 * 16 and small.fc1.out_features == 16
    assert small.fc2.in_features == 16 and small.bn.mean.shape == (8,)
    assert jp.nnx.is_pruned(small) and small.fc2.kernel_mask[...].shape == (16, 10)
    _close(small(x), model(x))
    _close(nnx.jit(lambda m, x: m(x))(small, x), model(x))
    small.train()
    optimizer = nnx.Optimizer(small, optax.sgd(0.1), wrt=nnx.Param)

    @nnx.jit
    def step(m, opt, x):
        loss, grads = nnx.value_and_grad(lambda m: (m(x) ** 2).mean())(m)
        opt.update(m, grads)
        return loss

    step(small, optimizer, x)
    assert bool((small.fc2.kernel[...][~small.fc2.kernel_mask[...]] == 0).all())
    assert report.params_after < report.params_before


def test_multiple_of_rounds_the_kept_channels_up_and_stays_exact():
    params = _mlp_params(jax.random.key(3), sizes=(6, 20, 12, 3))
    masks = jp.prune(params, "ln_structured", amount=7, n=2, dim=-1, where=r"l0/w")  # 13 kept
    x = jax.random.normal(jax.random.key(0), (4, 6))
    fn, small, report = jp.compact(_mlp, params, masks, x, multiple_of=8)
    assert small["l0"]["w"].shape == (6, 16) and small["l1"]["w"].shape == (16, 12)
    # the three held back are the highest-index pruned channels, with their values
    pruned = np.flatnonzero(~np.asarray(masks["l0"]["w"])[0])
    kept = np.setdiff1d(np.arange(20), pruned[:4])
    np.testing.assert_array_equal(
        small["l0"]["w"], np.asarray(jp.apply_masks(params, masks)["l0"]["w"])[:, kept]
    )
    assert report.kept == [
        "3 of 20 pruned channels of l0/w kept: the channel count rounded up to a multiple of 8"
    ]
    _close(fn(small, x), _mlp(jp.apply_masks(params, masks), x))
    with pytest.raises(ValueError, match="multiple_of=0"):
        jp.compact(_mlp, params, masks, x, multiple_of=0)


def test_an_nnx_compact_model_round_trips_through_orbax(tmp_path):
    import orbax.checkpoint as ocp
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(6, 16, rngs=rngs)
            self.b = nnx.Linear(16, 3, rngs=rngs)

        def __call__(self, x):
            return self.b(nnx.gelu(self.a(x)))

    model = MLP(nnx.Rngs(0))
    jp.nnx.prune(model, "ln_structured", amount=0.5, n=2, dim=-1, where="a/kernel")
    jp.nnx.prune(model, "l1_unstructured", amount=0.25, where="b/kernel")
    x = jax.random.normal(jax.random.key(1), (4, 6))
    small, _ = jp.nnx.compact(model, x)
    graphdef, state = nnx.split(small)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "small", state)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "small", abstract)
    again = nnx.merge(graphdef, restored)
    assert again.a.kernel.shape == (6, 8) and jp.nnx.is_pruned(again)
    _close(again(x), model(x))


def test_concatenated_channels_go_at_their_offsets():
    k = jax.random.split(jax.random.key(0), 6)
    params = {
        "a": jax.random.normal(k[0], (4, 6)),
        "ba": 0.3 * jax.random.normal(k[1], (6,)),  # nonzero: relu(ba) folds into bc
        "b": jax.random.normal(k[2], (4, 5)),
        "c": jax.random.normal(k[3], (6 + 5 + 4, 3)),
        "bc": jnp.zeros(3),
    }

    def f(p, x):
        # the model's input joins too: its 4 channels all stay
        h = jnp.concatenate([jax.nn.relu(x @ p["a"] + p["ba"]), x @ p["b"], x], axis=-1)
        return h @ p["c"] + p["bc"]

    masks = jax.tree.map(lambda _: True, params)
    masks["a"] = jnp.ones((1, 6), bool).at[0, jnp.array([1, 4])].set(False)
    masks["b"] = jnp.ones((1, 5), bool).at[0, 0].set(False)
    x = jax.random.normal(k[4], (3, 4))
    fn, small, report = jp.compact(f, params, masks, x)
    rows = [0, 2, 3, 5] + [6 + i for i in (1, 2, 3, 4)] + [11, 12, 13, 14]
    np.testing.assert_array_equal(small["c"], np.asarray(params["c"])[rows])
    assert small["a"].shape == (4, 4) and small["b"].shape == (4, 4) and report.kept == []
    _close(fn(small, x), f(jp.apply_masks(params, masks), x))
    x7 = jax.random.normal(k[5], (7, 4))
    _close(jax.jit(fn)(small, x7), f(jp.apply_masks(params, masks), x7))


def test_an_inception_style_concatenation_of_convolutions_and_a_nested_one():
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            a = nn.relu(nn.Conv(8, (1, 1))(x))
            b = nn.relu(nn.Conv(6, (1, 1))(x))
            c = nn.relu(nn.Conv(4, (1, 1))(x))
            h = jnp.concatenate([jnp.concatenate([a, b], axis=-1), c], axis=-1)
            h = nn.Conv(10, (3, 3), padding="VALID")(h)
            return nn.Dense(3)(h.mean(axis=(1, 2)))

    model = Net()
    x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
    v = model.init(jax.random.key(1), x)
    where = r"Conv_[012]/kernel"
    masks = jp.prune(v, "ln_structured", amount=0.5, n=2, dim=-1, where=where)
    for layer in ("Conv_0", "Conv_1", "Conv_2"):  # biases of the pruned channels too
        masks["params"][layer]["bias"] = masks["params"][layer]["kernel"].reshape(-1)
    fn, small, report = jp.compact(model.apply, v, masks, x)
    assert small["params"]["Conv_3"]["kernel"].shape == (3, 3, 4 + 3 + 2, 10)
    assert report.kept == []
    _close(fn(small, x), model.apply(jp.apply_masks(v, masks), x))


def test_a_concatenation_along_another_axis_keeps_the_channels_coupled():
    k = jax.random.split(jax.random.key(2), 3)
    params = {"a": jax.random.normal(k[0], (4, 6)), "b": jax.random.normal(k[1], (6, 2))}
    masks = {"a": jnp.ones((1, 6), bool).at[0, 2].set(False), "b": True}

    def f(p, x):
        h = jax.nn.relu(x @ p["a"])
        return jnp.concatenate([h, 2 * h], axis=0) @ p["b"]  # the batch axis

    x = jax.random.normal(k[2], (3, 4))
    fn, small, _ = jp.compact(f, params, masks, x)
    assert small["a"].shape == (4, 5) and small["b"].shape == (5, 2)
    _close(fn(small, x), f(jp.apply_masks(params, masks), x))


def test_a_multi_axis_dense_pruned_along_its_second_output_axis_retraces_alike():
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.gelu(nn.DenseGeneral((4, 8))(x))  # (heads, head size)
            return nn.DenseGeneral(16, axis=(-2, -1))(h)

    model = Net()
    x = jax.random.normal(jax.random.key(1), (2, 5, 16))
    v = model.init(jax.random.key(0), x)
    mask = jnp.ones((1, 1, 8), bool).at[0, 0, jnp.array([1, 5])].set(False)
    masks = jax.tree.map(lambda _: True, v)
    masks["params"]["DenseGeneral_0"] = {"kernel": mask, "bias": mask[0]}
    fn, small, _ = jp.compact(model.apply, v, masks, x)
    assert small["params"]["DenseGeneral_0"]["kernel"].shape == (16, 4, 6)
    assert small["params"]["DenseGeneral_1"]["kernel"].shape == (4, 6, 16)
    x2 = jax.random.normal(jax.random.key(3), (3, 7, 16))  # a new shape: a new trace
    _close(fn(small, x2), model.apply(jp.apply_masks(v, masks), x2))


def test_an_nnx_model_with_dropout_and_its_rng_keys_compacts_in_eval_mode():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(4, 8, rngs=rngs)
            self.drop = nnx.Dropout(0.2, rngs=rngs)  # holds PRNG keys in its state
            self.b = nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.b(self.drop(nnx.relu(self.a(x))))

    model = Net(nnx.Rngs(0))
    model.eval()
    jp.nnx.prune(model, "ln_structured", amount=0.5, n=2, dim=-1, where="a/kernel")
    x = jax.random.normal(jax.random.key(1), (3, 4))
    small, report = jp.nnx.compact(model, x)
    assert small.a.kernel.shape == (4, 4) and small.b.kernel.shape == (4, 2)
    assert report.kept == []
    _close(small(x), model(x))
