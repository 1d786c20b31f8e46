"""Within one tolerance layer, ``'*'`` applies before a named series, whatever order the keys
were written in; a later layer overrides only the fields it sets, its ``'*'`` included
(engine/tolerance.py ``resolve_tolerances``; issue 22: this order was guarded only by a CLI test)."""

from __future__ import annotations

import pytest

from pytest_optcheck.engine.tolerance import resolve_tolerances


@pytest.mark.parametrize("layer", [
    {"*": {"rtol": 0.1}, "loss": {"rtol": 0.5}},
    {"loss": {"rtol": 0.5}, "*": {"rtol": 0.1}},  # the named series still wins
], ids=["star-first", "star-last"])
def test_a_named_series_wins_over_star_in_the_same_layer(layer: dict) -> None:
    resolved = resolve_tolerances(["loss", "grad_norm"], layer)
    assert resolved["loss"].rtol == 0.5
    assert resolved["grad_norm"].rtol == 0.1


def test_a_later_layer_s_star_overrides_an_earlier_layer_s_named_series() -> None:
    ini, marker = {"loss": {"rtol": 0.5, "atol": 0.25}}, {"*": {"rtol": 0.2}}
    resolved = resolve_tolerances(["loss"], ini, marker)
    assert (resolved["loss"].rtol, resolved["loss"].atol) == (0.2, 0.25)
