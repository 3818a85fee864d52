import jax.numpy as jnp

import jaxprune as jp


def test_report_rows_and_table(key):
    params = {"Dense_0": {"kernel": jnp.ones((4, 10)), "bias": jnp.zeros(10)}}
    masks = jp.prune(params, "random_structured", key=key, amount=0.3)
    rows = jp.report(params, masks)
    by = {r.path: r for r in rows}
    k = by["Dense_0/kernel"]
    assert (k.shape, k.size, k.zeros, k.channels) == ((4, 10), 40, 12, (1, 7, 10))
    assert k.sparsity == 0.3
    b = by["Dense_0/bias"]
    assert (b.zeros, b.sparsity, b.channels) == (10, 1.0, None)
    table = jp.format_report(rows)
    assert "Dense_0/kernel" in table and "7/10 (dim 1)" in table
    assert table.splitlines()[-1].split() == ["total", "50", "22", "44.0%"]
    assert jp.report(params)[1].zeros == 0
