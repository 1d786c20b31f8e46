"""Importing the plugin is cheap: no torch, numpy or matplotlib until a check needs them.
(A whole session without optcheck tests: tests/e2e/test_plugin.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_the_plugin_imports_neither_torch_nor_matplotlib() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest_optcheck, pytest_optcheck.plugin, pytest_optcheck.declare.spec, pytest_optcheck.plugin.options
        heavy = [m for m in ("torch", "matplotlib", "numpy") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
