"""Shared by tests/ and parity_tests/: the suites run without JAX's persistent compilation
cache, which the CLI and torch_compat turn on by default (tests/test_cache.py tests that
default in processes of its own), so that no test depends on what an earlier run left on
disk and none writes to the user's cache directory."""

import os

os.environ["JAXPRUNE_COMPILATION_CACHE"] = "0"
