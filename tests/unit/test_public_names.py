"""The public names are listed twice in pytest_optcheck/__init__.py — ``_LAZY`` (where each
lives, imported on first use) and ``__all__`` (what ``from pytest_optcheck import *`` and
``dir()`` show): they must agree, and each must resolve to the object it names."""

from __future__ import annotations

import importlib

import pytest

import pytest_optcheck

EAGER = {"__version__"}  # defined in __init__ itself, not imported lazily


def test_lazy_names_and_all_agree() -> None:
    assert set(pytest_optcheck._LAZY) == set(pytest_optcheck.__all__) - EAGER
    assert len(pytest_optcheck.__all__) == len(set(pytest_optcheck.__all__))
    assert set(dir(pytest_optcheck)) >= set(pytest_optcheck.__all__)


@pytest.mark.parametrize("name", sorted(pytest_optcheck._LAZY))
def test_each_public_name_resolves_to_its_module_attribute(name: str) -> None:
    module, attribute = pytest_optcheck._LAZY[name]
    expected = getattr(importlib.import_module(f"pytest_optcheck.{module}"), attribute)
    assert getattr(pytest_optcheck, name) is expected


def test_the_errors_users_see_are_public() -> None:
    from pytest_optcheck.errors import RunError

    assert pytest_optcheck.RunError is RunError
    assert issubclass(pytest_optcheck.RunError, pytest_optcheck.OptcheckError)


def test_the_lazy_lookup_itself_resolves_caches_and_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Called directly: a process that already resolved a name never calls __getattr__ again."""
    from pytest_optcheck.engine.trajectory import Trajectory

    monkeypatch.delitem(vars(pytest_optcheck), "Trajectory", raising=False)
    assert pytest_optcheck.__getattr__("Trajectory") is Trajectory
    assert vars(pytest_optcheck)["Trajectory"] is Trajectory  # kept: the next lookup is a plain attribute
    with pytest.raises(AttributeError) as info:
        pytest_optcheck.__getattr__("Trajectories")
    assert str(info.value) == "module 'pytest_optcheck' has no attribute 'Trajectories'"
    assert pytest_optcheck.__dir__() == pytest_optcheck.__all__
