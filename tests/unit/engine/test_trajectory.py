"""The Trajectory's own behaviour that nothing else exercises: plotting without side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pytest_optcheck.engine.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[3]

PLOT_IN_A_NOTEBOOK = """
import sys
import matplotlib
matplotlib.use("svg")  # a notebook's or a user's chosen backend
import numpy as np
from pytest_optcheck.engine.trajectory import Trajectory

t = Trajectory({"loss": np.exp(-np.arange(10.0)), "lr": np.full((10, 2), 0.1)})
axes = t.plot()
axes[0].figure.savefig(sys.argv[1])
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules, "plot() went through pyplot (global figure state)"
print("OK")
"""


def test_plot_leaves_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PLOT_IN_A_NOTEBOOK, str(tmp_path / "t.png")], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_on_given_axes_uses_the_log_scale_rule() -> None:
    from matplotlib.figure import Figure

    t = Trajectory({"loss": np.exp(-np.arange(10.0)), "lr": np.full((10, 1), 0.1)})
    figure = Figure()
    loss_axis, lr_axis = figure.subplots(2, 1)
    t.plot(["loss"], ax=loss_axis)
    t.plot(["lr"], ax=lr_axis)
    assert loss_axis.get_yscale() == "log" and lr_axis.get_yscale() == "linear"
