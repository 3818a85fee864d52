"""torch_compat: a drop-in ``torch.nn.utils.prune`` whose masks are computed with JAX.

Change one import, ``from torch_compat import prune``, and pruning keeps working with the
same module state, the same masks under the same ``torch.manual_seed``, and JAX keys as an
option (``key=``) that reproduce ``jaxprune``'s masks.
"""

from . import prune as prune

__all__ = ["prune"]
