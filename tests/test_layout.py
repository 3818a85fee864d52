from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_test_files_have_unique_names_across_suites():
    # pytest imports both suites in one session; equal basenames would collide.
    names = [p.name for suite in ("tests", "parity_tests") for p in (ROOT / suite).glob("*.py")]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates
