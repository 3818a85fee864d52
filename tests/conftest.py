import jax
import pytest


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(params=["eager", "jit"])
def mode(request):
    """Run a callable eagerly or under jax.jit (arrays as traced arguments)."""
    return request.param
