"""The package's public names are listed twice — ``_LAZY`` (where each lives) and ``__all__``
(what ``from pytest_optcheck import *`` and the docs promise): the two lists agree, and each
name resolves to the object its module defines."""

from __future__ import annotations

import importlib

import pytest_optcheck


def test_lazy_names_and_all_agree() -> None:
    assert set(pytest_optcheck.__all__) - {"__version__"} == set(pytest_optcheck._LAZY)
    assert len(pytest_optcheck.__all__) == len(set(pytest_optcheck.__all__))  # no name twice


def test_every_public_name_resolves_to_its_module_s_object() -> None:
    for name, (module, attribute) in pytest_optcheck._LAZY.items():
        expected = getattr(importlib.import_module(f"pytest_optcheck.{module}"), attribute)
        assert getattr(pytest_optcheck, name) is expected, name
