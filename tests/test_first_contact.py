"""No program is built again for shapes already seen: every round after the first with a
prior mask, with any amount (float or int) and any prior, reuses the programs of the rounds
before it, in the core functions, the pytree layer, global pruning and torch_compat.
Counted, not timed (the times are in benchmarks/RESULTS.md, "First contact")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jp_helpers import Programs

import jaxprune as jp

AMOUNTS = [0.2, 0.3, 5, 0.1, 3, 0.25, 1, 0.0]  # floats and ints, in any order

CORE = {
    "l1_unstructured": lambda x, a, m: jp.l1_unstructured(x, a, default_mask=m),
    "random_unstructured": lambda x, a, m: jp.random_unstructured(
        jax.random.key(len(str(a))), x, a, default_mask=m
    ),
    "ln_structured": lambda x, a, m: jp.ln_structured(x, a, 2, 0, default_mask=m),
    "random_structured": lambda x, a, m: jp.random_structured(
        jax.random.key(1), x, a, -1, default_mask=m
    ),
}


def _rounds(call, amounts=AMOUNTS):
    """Programs built by each round, each round pruning on the mask of the one before."""
    built, mask = [], None
    for a in amounts:
        with Programs() as p:
            mask = jax.block_until_ready(call(a, mask))
        built.append(p.count)
    return built, mask


@pytest.mark.parametrize("name", sorted(CORE))
def test_core_functions_build_nothing_after_the_first_round_with_a_prior(name):
    x = jax.random.normal(jax.random.key(0), (24, 20))
    built, mask = _rounds(lambda a, m: CORE[name](x, a, m))
    assert built[0] >= 1 and built[1] >= 1  # without a prior, then with one
    assert built[2:] == [0] * (len(AMOUNTS) - 2)
    # A prior from elsewhere (not made by the previous round) is a prior all the same.
    other = jax.random.bernoulli(jax.random.key(3), 0.7, mask.shape)
    with Programs() as p:
        jax.block_until_ready(CORE[name](x, 4, other))
    assert p.count == 0
    assert int(mask.sum()) < mask.size  # the rounds pruned something


def test_the_pytree_layer_and_global_pruning_build_nothing_after_the_first_prior_round():
    k = jax.random.split(jax.random.key(0), 6)
    params = {
        "l0": {"w": jax.random.normal(k[0], (32, 32)), "b": jax.random.normal(k[1], (32,))},
        "l1": {"w": jax.random.normal(k[2], (32, 32)), "b": jax.random.normal(k[3], (32,))},
        "l2": {"w": jax.random.normal(k[4], (32, 2)), "b": jax.random.normal(k[5], (2,))},
    }
    for call in (
        lambda a, m: jp.prune(params, "l1_unstructured", amount=a, masks=m),
        lambda a, m: jp.prune(
            params, "random_unstructured", key=jax.random.key(1), amount=a, masks=m
        ),
        lambda a, m: jp.global_unstructured(params, a if isinstance(a, float) else 3 * a, masks=m),
    ):
        built, masks = _rounds(call)
        assert built[2:] == [0] * (len(AMOUNTS) - 2), built
        assert jp.sparsity(params, masks) > 0.3


def test_a_registered_method_builds_nothing_after_the_first_prior_round():
    fn = jp.register_method("first_contact_abs", lambda x: jnp.abs(x) - 1.0)
    x = jax.random.normal(jax.random.key(0), (16, 16))
    built, _ = _rounds(lambda a, m: fn(x, a, default_mask=m))
    assert built[2:] == [0] * (len(AMOUNTS) - 2)


def test_an_int_amount_is_still_checked_against_the_unpruned_units():
    x = jnp.arange(1.0, 17.0).reshape(4, 4)
    mask = jp.l1_unstructured(x, 10)
    with pytest.raises(ValueError, match="amount=7 should be smaller .*=6"):
        jp.l1_unstructured(x, 7, default_mask=mask)
    # The count table of an int and of the float equal to it differ: 1 unit, or all.
    assert int(jp.l1_unstructured(x, 1, default_mask=mask).sum()) == 5
    assert int(jp.l1_unstructured(x, 1.0, default_mask=mask).sum()) == 0


def test_host_and_device_counts_agree():
    # Priors in host memory are counted by NumPy; the others in one program. Both count
    # the same units, keepdims and scalar priors included.
    from jaxprune import _methods, _registry

    rng = np.random.default_rng(0)
    cases = [
        ("l1_unstructured", (6, 5), {}, rng.random((6, 5)) < 0.5),
        ("l1_unstructured", (6, 5), {}, np.array(True)),
        ("ln_structured", (6, 5), {"dim": 0, "n": 1}, rng.random((6, 1)) < 0.5),
        ("ln_structured", (6, 5, 3), {"dim": 1, "n": 1}, rng.random((6, 5, 3)) < 0.2),
        ("ln_structured", (6, 0), {"dim": 0, "n": 1}, np.zeros((6, 0), bool)),
    ]
    for name, shape, opts, prior in cases:
        spec = _methods.plan(_registry.get(name), shape, **opts)
        host = _methods.count_alive_now([spec], [jnp.asarray(prior)])
        device = [int(c) for c in _methods._count_alive((spec,), [jnp.asarray(prior)])]
        assert host == device, (name, shape)


def _mlp(sizes=(32, 32, 32, 2)):
    import torch

    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    return torch.nn.Sequential(*layers)


TORCH_CALLS = {
    "l1_unstructured": lambda p, m, n, a: p.l1_unstructured(m, n, amount=a),
    "random_unstructured": lambda p, m, n, a: p.random_unstructured(m, n, amount=a),
    "random_unstructured_key": lambda p, m, n, a: p.random_unstructured(
        m, n, amount=a, key=jax.random.key(7)
    ),
    "ln_structured": lambda p, m, n, a: p.ln_structured(m, n, amount=a, n=2, dim=0),
    "random_structured": lambda p, m, n, a: p.random_structured(m, n, amount=a, dim=1),
}


@pytest.mark.parametrize("name", sorted(TORCH_CALLS))
def test_torch_compat_rounds_build_nothing_new(name):
    # A training framework's pruning callback: weights and biases of a small MLP, one round
    # per epoch. With torch's generator the first round builds every program (a first prune
    # uses the program of the later ones); with a JAX key, jaxprune's core functions build
    # theirs in the first two rounds.
    from torch_compat import prune

    call = TORCH_CALLS[name]
    names = ("weight",) if "structured" in name and "un" not in name else ("weight", "bias")
    model = _mlp()
    amounts = [0.2, 1, 0.3, 1, 0.1, 0.25]
    built = []
    for a in amounts:
        with Programs() as p:
            for layer in model:
                for n in names:
                    call(prune, layer, n, a)
        built.append(p.count)
    first = 2 if name.endswith("_key") else 1
    assert built[first:] == [0] * (len(amounts) - first), built
    # Layers of other sizes in the same size buckets build nothing either.
    if not name.endswith("_key"):
        with Programs() as p:
            for layer in _mlp((30, 31, 20, 3)):
                for n in names:
                    call(prune, layer, n, 0.3)
        assert p.count == 0


def test_torch_compat_global_rounds_build_nothing_new():
    import torch

    from torch_compat import prune

    model = _mlp()
    params = [(layer, n) for layer in model for n in ("weight", "bias")]
    built = []
    for a in [0.2, 10, 0.3, 0.1]:
        with Programs() as p:
            prune.global_unstructured(params, prune.L1Unstructured, amount=a)
        built.append(p.count)
    assert built[1:] == [0, 0, 0], built
    assert float(sum((layer.weight == 0).sum() for layer in model)) > 0
    assert isinstance(model[0].weight_mask, torch.Tensor)


def test_importing_torch_compat_or_jaxprune_does_not_import_jax():
    import subprocess
    import sys

    code = (
        "import sys, jaxprune, torch_compat.prune\n"
        "from torch_compat import prune\n"
        "print('jax' in sys.modules)\n"
        "import torch\n"
        "prune.l1_unstructured(torch.nn.Linear(3, 2), 'weight', amount=1)\n"
        "print('jax' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]  # JAX comes with the first mask
