"""``scripts/test``, the command CI runs: it passes pytest's verdict on, including "no test
was selected", so a misspelt filter cannot look like a green run."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _scripts_test(*arguments: str) -> subprocess.CompletedProcess[str]:
    # One worker (-n 0 after the script's -n 2) and one small file keep this quick.
    return subprocess.run(
        [str(ROOT / "scripts" / "test"), "-n", "0", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )


def test_a_filter_that_selects_no_test_fails() -> None:
    result = _scripts_test("-k", "typo_that_names_no_test", "tests/test_layers.py")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "error: no test was selected (pytest exit 5)" in result.stderr


def test_a_filter_that_selects_tests_passes_with_them() -> None:
    result = _scripts_test("-k", "layers", "tests/test_layers.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout

