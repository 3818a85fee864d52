import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxprune import _keys


def test_both_key_styles_accepted():
    new = _keys.as_key(jax.random.key(1))
    old = _keys.as_key(jax.random.PRNGKey(1))
    assert (jax.random.key_data(new) == jax.random.key_data(old)).all()


@pytest.mark.parametrize(
    "bad,msg",
    [
        (None, "key is required"),
        (3, "Integer seeds are not accepted"),
        (jnp.zeros(3, jnp.uint32), "dtype uint32 and shape (3,)"),
        (jnp.zeros(2, jnp.float32), "dtype float32"),
    ],
)
def test_bad_keys(bad, msg):
    with pytest.raises(TypeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        _keys.as_key(bad)


def test_path_hash_golden_values_are_stable():
    # Changing these would change every per-leaf mask users have saved.
    golden = {p: _keys.path_hash(p) for p in ("Dense_0/kernel", "layers/0/kernel", "")}
    code = (
        "from jaxprune import _keys; "
        "print([_keys.path_hash(p) for p in ('Dense_0/kernel', 'layers/0/kernel', '')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout
    assert out.strip() == str(list(golden.values()))
    assert golden == {"Dense_0/kernel": 43551336, "layers/0/kernel": 1412688284, "": 634351890}
    assert all(0 <= h < 2**31 for h in golden.values())
