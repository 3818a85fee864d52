import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jp_helpers import ref_lowest

from jaxprune import _narrowing, _order, _select


def _keys(rng, shape, nvalues):
    return rng.integers(0, nvalues, size=shape, dtype=np.uint32)


def _bisect(scores, alive, k):
    """The counting path of lowest_k, whatever the size."""
    wide = any(jnp.dtype(s.dtype).itemsize == 8 for s in scores)
    kdtype = jnp.uint64 if wide else jnp.uint32
    keys = [_order.Keys(s, kdtype) for s in scores]
    alive = [None if a is None else jnp.broadcast_to(a, s.shape) for s, a in zip(scores, alive)]
    return _select._lowest_k_counting(keys, alive, k)


@pytest.mark.parametrize("nvalues", [2, 7, 1 << 31])
@pytest.mark.parametrize("shape", [(1,), (9,), (13, 7), (4, 5, 6)])
def test_sorted_and_bisect_paths_match_reference(nvalues, shape):
    rng = np.random.default_rng(nvalues + len(shape))
    for _ in range(6):
        keys = _keys(rng, shape, nvalues)
        alive = rng.random(shape) < 0.7
        n_alive = int(alive.sum())
        k = int(rng.integers(0, n_alive + 1))
        expected = ref_lowest(keys, alive, k).reshape(shape)
        kk, aa = jnp.asarray(keys), jnp.asarray(alive)
        (sorted_,) = _select._lowest_k_sorted([kk], [aa], jnp.uint32(k))
        (bisect,) = jax.jit(_bisect)([kk], [aa], jnp.uint32(k))
        np.testing.assert_array_equal(np.asarray(sorted_), expected)
        np.testing.assert_array_equal(np.asarray(bisect), expected)
        assert int(bisect.sum()) == k


def test_several_arrays_order_by_array_then_position():
    a = jnp.array([3, 1, 1], jnp.uint32)
    b = jnp.array([[1, 0], [1, 5]], jnp.uint32)
    for fn in (_select._lowest_k_sorted, _bisect):
        out = fn([a, b], [jnp.ones(3, bool), jnp.ones((2, 2), bool)], jnp.uint32(3))
        # Values 0 (b[0,1]), then the 1s by position: a[1], a[2] before b[0,0].
        assert out[0].tolist() == [False, True, True]
        assert out[1].tolist() == [[False, True], [False, False]]


@pytest.mark.parametrize("bracket_min", [1, _select.BRACKET_MIN])
def test_tie_cut_at_every_count_across_arrays_of_every_rank(monkeypatch, bracket_min):
    # Few distinct keys: the cut falls among tied units in every array, in the middle of a
    # row, at a row's end, on a scalar, and on an array whose ties are all dead. Large
    # selections cut by bitmaps of the ties, small ones by bisection over positions.
    monkeypatch.setattr(_select, "BRACKET_MIN", bracket_min)
    rng = np.random.default_rng(3)
    shapes = [(), (5,), (3, 4), (2, 1, 3), (4, 2)]
    keys = [_keys(rng, s, 2) for s in shapes]
    alive = [rng.random(s) < 0.75 for s in shapes]
    alive[4] = np.zeros((4, 2), bool)
    flat_keys = np.concatenate([np.ravel(k) for k in keys])
    flat_alive = np.concatenate([np.ravel(a) for a in alive])
    fn = jax.jit(_bisect)
    for k in range(int(flat_alive.sum()) + 1):
        got = fn([jnp.asarray(x) for x in keys], [jnp.asarray(a) for a in alive], jnp.uint32(k))
        flat = np.concatenate([np.ravel(g) for g in got])
        np.testing.assert_array_equal(flat, ref_lowest(flat_keys, flat_alive, k), err_msg=f"k={k}")


def test_large_input_uses_bisection_and_is_exact():
    rng = np.random.default_rng(0)
    keys = _keys(rng, (300, 200), 5000)  # many ties
    alive = rng.random((300, 200)) < 0.9
    k = 12345
    (out,) = _select.lowest_k([jnp.asarray(keys)], [jnp.asarray(alive)], jnp.uint32(k))
    np.testing.assert_array_equal(np.asarray(out), ref_lowest(keys, alive, k).reshape(300, 200))


def test_order_key_preserves_magnitude_order_and_puts_nan_last():
    x = jnp.array([-0.0, 0.0, -1.5, 1.0, jnp.inf, -jnp.inf, jnp.nan, 1e-30, -3.0])
    keys = np.asarray(_select.order_key(x))
    mags = np.abs(np.asarray(x, np.float64))
    order = np.argsort(np.where(np.isnan(mags), np.inf, mags), kind="stable")
    assert (np.diff(keys[order][:-1].astype(np.int64)) >= 0).all()
    assert keys[6] > keys[4]  # NaN above inf
    assert keys[0] == keys[1]  # -0.0 and 0.0 tie


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.int8, jnp.int32])
def test_order_key_is_monotone_for_each_dtype(dtype):
    values = np.array([-100, -3, -1, 0, 1, 2, 50, 100], np.float32)
    x = jnp.asarray(values).astype(dtype)
    keys = np.asarray(_select.order_key(x)).astype(np.int64)
    mags = np.abs(np.asarray(x.astype(jnp.float32)))
    for i in range(len(values)):
        for j in range(len(values)):
            assert (mags[i] < mags[j]) == (keys[i] < keys[j])


def test_int_min_magnitude():
    x = jnp.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max], jnp.int32)
    keys = _select.order_key(x)
    assert int(keys[0]) == 2**31 and int(keys[1]) == 2**31 - 1


@pytest.mark.parametrize(
    "shape",
    [
        (0,),
        (5,),
        (128,),
        (3, 256),
        (1000,),
        (2, 3, 384),
        (7, 129),
        (4, 1024, 4096),
        (3, 1031),
        (2, 96, 1000),
    ],
)
def test_count_true_matches_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.3, 1.0):  # all True: every group sums to its limit
        b = rng.random(shape) < density
        got = jax.jit(_select.count_true)(jnp.asarray(b))
        assert got.dtype == jnp.uint32 and int(got) == int(b.sum())


def test_count_true_under_vmap():
    b = np.random.default_rng(0).random((6, 2, 256)) < 0.5
    got = jax.vmap(_select.count_true)(jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(got), b.sum(axis=(1, 2)))


@pytest.mark.parametrize("nvalues", [2, 7, 5000, 1 << 31])
def test_sample_bracketed_path_matches_reference(monkeypatch, nvalues):
    # Every selection goes through the sample bracket here (it starts at 2**20 units).
    monkeypatch.setattr(_select, "BRACKET_MIN", 1)
    rng = np.random.default_rng(nvalues)
    shapes = [(301,), (64, 96), (3, 40, 24)]
    fn = jax.jit(_bisect)
    for trial in range(8):
        keys = [_keys(rng, s, nvalues) for s in shapes]
        alive = [rng.random(s) < 0.8 for s in shapes]
        if trial % 2:
            alive[1] = None  # every unit of this one alive
        if trial == 3:
            keys[1] = np.sort(keys[1], axis=None).reshape(shapes[1])  # a biased sample
        flat_keys = np.concatenate([k.ravel() for k in keys])
        flat_alive = np.concatenate(
            [np.ones(k.size, bool) if a is None else a.ravel() for k, a in zip(keys, alive)]
        )
        n_alive = int(flat_alive.sum())
        for k in (0, 1, int(rng.integers(0, n_alive + 1)), n_alive):
            expected = ref_lowest(flat_keys, flat_alive, k)
            got = fn(
                [jnp.asarray(x) for x in keys],
                [None if a is None else jnp.asarray(a) for a in alive],
                jnp.uint32(k),
            )
            np.testing.assert_array_equal(np.concatenate([np.ravel(g) for g in got]), expected)


def test_bracket_is_tight_and_its_counts_exact_on_a_large_weight():
    x = jax.random.normal(jax.random.key(0), (1024, 2048))
    keys = _select.order_key(x)
    n = keys.size
    k = jnp.uint32(n // 2)
    lo, hi, below, upto = jax.jit(
        lambda kk: _narrowing.bracket(
            [_order.Keys(kk, jnp.uint32)], [None], k, jnp.uint32(n), jnp.uint32
        )
    )(keys)
    host = np.asarray(keys)
    assert int(below) == int((host < lo).sum()) < n // 2 <= int(upto) == int((host <= hi).sum())
    assert int(upto) - int(below) < n // 20  # the bracket holds under 5% of the units
    (out,) = _select.lowest_k([keys], [None], k)  # 2**21 units: the bracketed path
    np.testing.assert_array_equal(np.asarray(out).ravel(), ref_lowest(host, True, n // 2))


def _float_trials(rng, shapes, dtype):
    """Float scores with NaN, +-inf, signed zeros and many tied magnitudes."""
    out = []
    for s in shapes:
        x = rng.standard_normal(s).astype(np.float32)
        x[rng.random(s) < 0.3] = 0.5  # ties
        special = rng.random(s)
        x[special < 0.01] = np.nan
        x[(special >= 0.01) & (special < 0.02)] = -np.inf
        x[(special >= 0.02) & (special < 0.03)] = -0.0
        out.append(jnp.asarray(x).astype(dtype))
    return out


@pytest.mark.parametrize("dtypes", [("float32",), ("bfloat16", "float32"), ("float16",)])
def test_float_scores_on_the_narrowing_path_match_reference(monkeypatch, dtypes):
    # Keys of floats are compared on the fly, never stored: NaN last, -0.0 with 0.0, inf
    # below NaN, and narrower floats compared exactly as their widened values.
    monkeypatch.setattr(_select, "BRACKET_MIN", 1)
    rng = np.random.default_rng(len(dtypes))
    shapes = [(301,), (64, 96), (3, 40, 24), ()]
    fn = jax.jit(_bisect)
    for trial in range(6):
        scores = _float_trials(rng, shapes, dtypes[trial % len(dtypes)])
        if len(dtypes) > 1:
            scores[1] = scores[1].astype(dtypes[1])  # mixed widths in one selection
        alive = [rng.random(s.shape) < 0.8 for s in scores]
        alive[2] = None
        mags = np.concatenate([np.abs(np.asarray(s, np.float64)).ravel() for s in scores])
        flat_alive = np.concatenate(
            [np.ones(s.size, bool) if a is None else a.ravel() for s, a in zip(scores, alive)]
        )
        n_alive = int(flat_alive.sum())
        for k in (0, 1, int(rng.integers(0, n_alive + 1)), n_alive - 3, n_alive):
            got = fn(scores, [None if a is None else jnp.asarray(a) for a in alive], jnp.uint32(k))
            flat = np.concatenate([np.ravel(g) for g in got])
            np.testing.assert_array_equal(flat, ref_lowest(mags, flat_alive, k), err_msg=f"{k}")


def test_end_game_outcomes_are_all_exact(monkeypatch):
    # The end game settles the key from per-group minima when no two candidates share a
    # group, by the tie when every candidate has one key, and otherwise hands a bound on:
    # every outcome occurs here, and every selection is exact.
    monkeypatch.setattr(_select, "BRACKET_MIN", 1)
    outcomes = set()
    endgame = _narrowing.endgame

    def recorded(*args):
        out = endgame(*args)
        jax.debug.callback(lambda f, h: outcomes.add((bool(f), int(h) > 0)), out[0], out[5])
        return out

    monkeypatch.setattr(_narrowing, "endgame", recorded)
    rng = np.random.default_rng(7)
    fn = jax.jit(_bisect)
    for trial in range(12):
        x = rng.standard_normal((96, 128)).astype(np.float32)
        if trial % 3 == 1:
            x = np.round(4 * x)  # few distinct magnitudes: ties
        if trial % 3 == 2:
            x = x[:, :2].repeat(64, axis=1)  # equal values side by side in each row
        k = int(rng.integers(1, x.size))
        (got,) = fn([jnp.asarray(x)], [None], jnp.uint32(k))
        expected = ref_lowest(np.abs(x), True, k).reshape(x.shape)
        np.testing.assert_array_equal(np.asarray(got), expected, err_msg=f"trial {trial}")
    assert {(True, False), (False, True)} <= outcomes, outcomes


def test_end_game_settles_a_run_of_tied_keys():
    # Every unit of the interval has one key, far more units than groups can hold apart:
    # the k-th key is that key, and count(< key) stays exact.
    x = np.full((64, 256), 3.0, np.float32)
    x[:, :8] = 1.0
    x[:, -8:] = 9.0
    scores = jnp.asarray(x)
    keys = [_order.Keys(scores, jnp.uint32)]

    def key(v):
        return _select.order_key(jnp.float32(v))

    below = int((x < 2.0).sum())
    units = int(((x > 2.0) & (x < 8.0)).sum())
    zero = jnp.zeros((), jnp.int32)
    state = _narrowing.Narrowing(
        key(2.0), key(8.0), jnp.uint32(below), jnp.uint32(below + units), zero, zero, key(8.0)
    )
    found, v, n_below, _, _, hidden = _narrowing.endgame(
        keys, [None], state, jnp.uint32(below + 100), jnp.uint32
    )
    assert bool(found) and int(hidden) > 0
    assert int(v) == int(key(3.0)) and int(n_below) == below


@pytest.mark.parametrize("width", [40, 300])  # the sorted path, the counting path
@pytest.mark.parametrize("with_alive", [False, True])
@pytest.mark.parametrize("kind", ["bits", "few_values", "floats"])
def test_rows_select_what_each_row_alone_selects(width, with_alive, kind):
    # lowest_k_rows runs the tie cut only when some row needs it; rows with and without ties
    # at their cut, every k from none to all, match the reference row by row.
    rng = np.random.default_rng(width + 3 * with_alive + len(kind))
    rows = 12
    if kind == "bits":  # the random methods' keys: ties almost never
        scores = rng.integers(0, 2**32, size=(rows, width), dtype=np.uint32)
    elif kind == "few_values":  # ties at every cut
        scores = rng.integers(0, 5, size=(rows, width), dtype=np.uint32)
    else:
        scores = np.round(rng.normal(size=(rows, width)), 1).astype(np.float32)
        scores[0, :3] = [np.nan, -np.inf, -0.0]
    alive = rng.random((rows, width)) < 0.7 if with_alive else np.ones((rows, width), bool)
    n_alive = alive.sum(axis=1)
    k = np.array([0, n_alive[1]] + list(rng.integers(0, n_alive[2:] + 1)), np.uint32)
    got = jax.jit(_select.lowest_k_rows)(
        jnp.asarray(scores), jnp.asarray(alive) if with_alive else None, jnp.asarray(k)
    )
    order = np.abs(scores) if kind == "floats" else scores
    for r in range(rows):
        np.testing.assert_array_equal(np.asarray(got[r]), ref_lowest(order[r], alive[r], k[r]))
    if kind == "bits":  # the last row's cut lands inside a run of ties: the cut branch runs
        scores[-1, : width // 2] = 7
        k[-1] = 3
        got = _select.lowest_k_rows(jnp.asarray(scores), jnp.asarray(alive), jnp.asarray(k))
        np.testing.assert_array_equal(np.asarray(got[-1]), ref_lowest(scores[-1], alive[-1], 3))
