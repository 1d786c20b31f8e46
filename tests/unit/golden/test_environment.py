"""The environment a golden records (golden/environment.py), pinned exactly: every key, the
third-party libraries' versions by distribution (under another name too), by ``__version__``, or
left out, the changes a failure names, and the per-torch-version key."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import types

import numpy
import pytest
import torch

from pytest_optcheck.golden import environment as env


def test_every_key_and_no_libraries_key_without_libraries() -> None:
    machine = platform.processor() or platform.machine() or "cpu"
    assert env.environment("cpu", "float64") == {
        "torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
        "device": "cpu", "device_name": machine, "dtype": "float64",
        "platform": f"{platform.system()}-{platform.machine()}"}
    assert env.environment()["dtype"] == "float32" and env.environment()["device"] == "cpu"
    if not torch.cuda.is_available():
        assert env.environment("cuda")["device_name"] == machine


def test_library_versions_by_distribution_by_version_attribute_or_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import PIL  # installed by the distribution "pillow" (matplotlib needs it)

    monkeypatch.setitem(sys.modules, "own_lib", types.SimpleNamespace(__version__="1.2", __file__="/p/own_lib.py"))
    monkeypatch.setitem(sys.modules, "odd_lib", types.SimpleNamespace(__version__=(1, 2)))
    monkeypatch.setitem(sys.modules, "test_file", types.SimpleNamespace(__file__="/p/test_file.py"))
    assert env.library_versions(["pytest", "PIL", "own_lib", "odd_lib", "test_file", "not_imported"]) == {
        "pytest": importlib.metadata.version("pytest"),
        "PIL": importlib.metadata.version("pillow"),
        "own_lib": "1.2",
    }
    assert PIL.__name__ == "PIL"
    assert env.environment(libraries=["pytest"])["libraries"] == {"pytest": importlib.metadata.version("pytest")}


def test_a_module_outside_site_packages_is_not_looked_up_among_distributions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", types.SimpleNamespace(__file__="/home/me/PIL/__init__.py"))
    assert env.library_versions(["PIL"]) == {}


def test_changes_name_each_key_then_each_library() -> None:
    old = {"torch": "2.12.0", "device": "cpu", "libraries": {"a": "1", "b": "2", "c": "3"}}
    new = {"torch": "2.13.0", "device": "cpu", "libraries": {"b": "2", "c": "4", "d": "5"}}
    assert env.library_changes(old, new) == ["a 1 -> absent", "c 3 -> 4", "d absent -> 5"]
    assert env.environment_changes(old, new) == ["torch 2.12.0 -> 2.13.0", "a 1 -> absent", "c 3 -> 4",
                                                 "d absent -> 5"]
    assert env.library_changes({}, {"libraries": None}) == []


def test_the_torch_minor_key() -> None:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    assert env.torch_minor_key() == f"torch-{major}.{minor}"


def test_a_module_installed_under_another_distribution_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found through the installed metadata (the first of its distributions that is installed),
    for a module in site-packages or dist-packages, whatever its ``__version__`` says."""
    for name, where in (("fake_site", "/venv/lib/python3.11/site-packages/fake_site/__init__.py"),
                        ("fake_dist", "/usr/lib/python3/dist-packages/fake_dist/__init__.py")):
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(__file__=where, __version__="0.0.wrong"))
    monkeypatch.setattr(env, "_distributions", lambda: {"fake_site": ["not-installed-dist", "pytest"],
                                                       "fake_dist": ["pytest"]})
    monkeypatch.setitem(sys.modules, "fake_none", types.SimpleNamespace(__file__="/venv/site-packages/fake_none.py"))
    pytest_version = importlib.metadata.version("pytest")
    assert env.library_versions(["fake_site", "fake_dist", "fake_none"]) == {"fake_site": pytest_version,
                                                                              "fake_dist": pytest_version}


def test_the_device_name_of_a_gpu_and_of_a_cpu_that_does_not_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"GPU {device}")
    assert env.environment("cuda:1")["device_name"] == "GPU cuda:1"
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert env.environment("cpu")["device_name"] == "cpu"
