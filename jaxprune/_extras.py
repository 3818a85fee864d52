"""Optional dependencies: import them where they are needed, naming the extra that has them."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra of the distribution that installs each optional module.
EXTRAS = {"flax": "flax", "optax": "flax", "orbax": "flax", "safetensors": "demo", "torch": "torch"}


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (``"jp.keep_pruned"``, say).

    Raises:
        ImportError: the module is not installed; the message names the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise ImportError(
            f"{what} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'jaxprune[{extra}]'"
        ) from e
