import jax.numpy as jnp
import pytest

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


def test_where_counts_only_the_selected_leaves():
    params = {"Dense_0": {"kernel": jnp.ones((4, 10)).at[0].set(0.0), "bias": jnp.zeros(10)}}
    assert jp.sparsity(params) == 20 / 50  # the zero bias counts as pruned
    assert jp.sparsity(params, where="kernel") == 10 / 40
    assert [r.path for r in jp.report(params, where="kernel")] == ["Dense_0/kernel"]
    masks = {"Dense_0": {"kernel": jnp.ones((1, 10), bool).at[0, :5].set(False), "bias": True}}
    assert jp.sparsity(params, masks, where=lambda p, x: x.ndim == 2) == (10 + 15) / 40
    with pytest.raises(ValueError, match="selected no leaf"):
        jp.sparsity(params, where="nothing")


def test_channels_are_read_from_the_values_without_masks():
    w = jnp.ones((3, 3, 4, 8)).at[..., jnp.array([1, 5])].set(0.0)  # 2 output channels gone
    row = jp.report({"conv": w})[0]
    assert row.channels == (3, 6, 8)
    t = jnp.ones((6, 4)).at[2].set(0.0)  # torch layout: a row of outputs gone
    assert jp.report({"linear": t})[0].channels == (0, 5, 6)
    assert jp.report({"dense": jnp.ones((2, 2))})[0].channels is None
    assert "6/8 (dim 3)" in jp.format_report(jp.report({"conv": w}))


def test_long_paths_keep_the_columns_aligned():
    params = {
        "encoder/layer_11/attention/self/query/kernel": jnp.ones((4, 4)),
        "b": jnp.zeros(3),
    }
    lines = jp.format_report(jp.report(params)).splitlines()
    # Every row's sparsity column ends at the same place, the long path's row included.
    ends = {len(line.split("%")[0]) for line in lines if "%" in line}
    assert len(ends) == 1 and lines[2].startswith("b ")
    assert lines[0].index("shape") == len("encoder/layer_11/attention/self/query/kernel") + 1


def test_the_nm_column_finds_the_sparsest_pattern_along_the_input_axis():
    import jax

    w = jax.random.normal(jax.random.key(0), (16, 6))  # (in, out)
    params = {"dense": w, "odd": jnp.ones((10, 3)), "bias": jnp.ones(6)}
    masks = {"dense": jp.nm_unstructured(w, 2, 4), "odd": True, "bias": True}
    by = {r.path: r for r in jp.report(params, masks)}
    assert by["dense"].nm == (2, 4, 0) and by["odd"].nm is None and by["bias"].nm is None
    one_of_four = jp.apply_mask(w, jp.nm_unstructured(w, 1, 4))
    assert jp.report({"w": one_of_four})[0].nm == (1, 4, 0)  # read from the values
    assert jp.report({"w": w})[0].nm is None  # dense: no pattern below 1
    torch_layout = {"w": one_of_four.T}  # (out, in): the groups run along axis 1
    assert jp.report(torch_layout, nm_dim=1)[0].nm == (1, 4, 1)
    assert jp.report(torch_layout)[0].nm is None
    assert "1:4 (dim 0)" in jp.format_report(jp.report({"w": one_of_four}))


def test_the_cli_report_reads_n_m_in_the_file_layout(tmp_path, capsys):
    import numpy as np
    import torch

    from jaxprune import _cli

    w = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)  # (out, in)
    w.reshape(6, 2, 4)[:, :, :2] = 0.0  # 2 of every 4 inputs
    torch.save({"fc.weight": torch.from_numpy(w)}, tmp_path / "w.pt")
    assert _cli.main(["report", str(tmp_path / "w.pt")]) == 0
    assert "2:4 (dim 1)" in capsys.readouterr().out
