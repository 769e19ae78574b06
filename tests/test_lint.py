"""The code stays clean by the project's own rules (ruff and mypy, configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from conftest import BIN, ROOT


def test_ruff_is_clean():
    result = subprocess.run([str(BIN / "ruff"), "check", "scripts", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_is_clean():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
