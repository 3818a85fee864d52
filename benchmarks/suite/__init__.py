"""The benchmark suite (``python -m benchmarks``, ``make bench``): jaxprune, torch_compat and
torch.nn.utils.prune side by side on the same shapes, in one run.

Workloads W1-W8 (``benchmarks/RESULTS.md`` says what each measures), medians after
warm-up, compile time and first calls apart, peak memory, each time also as a multiple of a
memcpy of the same bytes. Needs torch (``pip install 'jaxprune[torch]'``); ``--plot`` needs
matplotlib and the table needs rich.
"""

from ._suite import WORKLOADS, run

__all__ = ["WORKLOADS", "run"]
