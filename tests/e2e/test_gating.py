"""plugin/gating.py in real, torch-free pytest sessions (pytester, in process): the header,
``--optcheck`` gating, the per-device parametrisation, and the marker merged per item.

Fast (no training) and run by benchmarks/mutation.py too: numpy is imported here, once,
before any inner session (a module first imported inside one is dropped after it)."""

from __future__ import annotations

from importlib import metadata

import numpy  # noqa: F401  (see the docstring)
import pytest

from pytest_optcheck.declare.spec import Spec, SpecError
from pytest_optcheck.plugin.gating import SKIP_REASON, is_marked, marker_kwargs, spec_for

pytest_plugins = ["pytester"]

PLAIN = "-p no:randomly -p no:cacheprovider -p no:xdist"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\n")
    return pytester.runpytest_inprocess(*PLAIN.split(), *args)


def _header(result: pytest.RunResult) -> str:
    return next(line for line in result.outlines if line.startswith("optcheck: "))


def test_the_header_says_state_torch_devices_and_goldens(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    torch = metadata.version("torch")
    assert _header(_run(pytester)) == f"optcheck: disabled (use --optcheck); torch {torch}; devices cpu; goldens in golden"
    header = _header(_run(pytester, "--optcheck", "--optcheck-device", "cpu,mps", "--optcheck-golden-dir", "g/x"))
    assert header == f"optcheck: enabled; torch {torch}; devices cpu, mps; goldens in g/x"
    pytester.makeini("[pytest]\noptcheck_golden_key = torch-minor\n")
    keyed = pytester.runpytest_inprocess(*PLAIN.split())
    assert _header(keyed).endswith("; goldens in golden (per torch-minor)")


def test_the_header_without_torch(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name == "torch":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    pytester.makepyfile("def test_a():\n    pass\n")
    assert "; torch not installed; " in _header(_run(pytester))


TESTS = """
import pytest

@pytest.mark.optcheck
def test_marked(_optcheck_device):
    assert _optcheck_device in ("cpu", "mps")

def test_plain(_optcheck_device):
    assert _optcheck_device == "cpu"

@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.optcheck)])
def test_param(_optcheck_device, n):
    pass

@pytest.mark.parametrize(argnames="n", argvalues=[pytest.param(3, marks=[pytest.mark.optcheck])])
def test_param_keywords(_optcheck_device, n):
    pass

@pytest.mark.parametrize("n", [pytest.param(4, marks=pytest.mark.slow)])
def test_other_mark(_optcheck_device, n):
    pass

@pytest.mark.parametrize("n", argvalues=(pytest.param(5, marks=pytest.mark.optcheck),))
def test_param_values_keyword(_optcheck_device, n):
    pass

@pytest.mark.lookalike("n", [pytest.param(6, marks=pytest.mark.optcheck)])
def test_lookalike(_optcheck_device):
    pass

@pytest.mark.optcheck
def test_no_device():
    pass
"""


@pytest.mark.optcheck
def test_this_marked_test_runs_only_with_the_flag(request: pytest.FixtureRequest) -> None:
    """The session running this file is a real one too: its marked tests skip without --optcheck."""
    if not request.config.getoption("optcheck"):
        pytest.fail("a marked test ran although --optcheck is off")


def _ids(result: pytest.RunResult) -> dict[str, str]:
    """Node id (after ``::``) -> PASSED / SKIPPED, from ``-v`` lines."""
    out = {}
    for line in result.outlines:
        if "::" in line and (" PASSED" in line or " SKIPPED" in line):
            name, _, rest = line.partition("::")[2].partition(" ")
            out[name] = rest.split()[0]
    return out


def test_marked_tests_skip_without_the_flag_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gated=TESTS)
    result = _run(pytester, "-v", "-rs", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    assert _ids(result) == {"test_marked[cpu]": "SKIPPED", "test_plain": "PASSED", "test_param[1-cpu]": "PASSED",
                            "test_param[2-cpu]": "SKIPPED", "test_param_keywords[3-cpu]": "SKIPPED",
                            "test_other_mark[4]": "PASSED", "test_param_values_keyword[5-cpu]": "SKIPPED",
                            "test_lookalike": "PASSED", "test_no_device": "SKIPPED"}
    skipped = [line for line in result.outlines if line.startswith("SKIPPED [1] ")]
    assert skipped == [f"SKIPPED [1] test_gated.py:{n}: {SKIP_REASON}" for n in (3, 10, 14, 22, 30)]
    assert SKIP_REASON == ("optcheck test: run it with `pytest --optcheck` "
                           "(or set `optcheck = true` in the ini file)")


def test_with_the_flag_each_marked_test_runs_once_per_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gated=TESTS)
    result = _run(pytester, "-v", "--optcheck", "--optcheck-device", "cpu,mps",
                  "-W", "ignore::pytest.PytestUnknownMarkWarning")
    assert _ids(result) == {
        "test_marked[cpu]": "PASSED", "test_marked[mps]": "PASSED", "test_plain": "PASSED",
        "test_param[1-cpu]": "PASSED", "test_param[2-cpu]": "PASSED", "test_param[1-mps]": "PASSED",
        "test_param[2-mps]": "PASSED", "test_param_keywords[3-cpu]": "PASSED", "test_param_keywords[3-mps]": "PASSED",
        "test_other_mark[4]": "PASSED", "test_param_values_keyword[5-cpu]": "PASSED",
        "test_param_values_keyword[5-mps]": "PASSED", "test_lookalike": "PASSED", "test_no_device": "PASSED"}


def _items(pytester: pytest.Pytester, source: str) -> list[pytest.Item]:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_items=source)
    items, _ = pytester.inline_genitems(*PLAIN.split())
    return items


def test_markers_merge_farthest_first_per_item(pytester: pytest.Pytester) -> None:
    items = _items(pytester, """
import pytest
pytestmark = pytest.mark.optcheck(epochs=3, seed=1)

class TestC:
    pytestmark = pytest.mark.optcheck(seed=2, batch_size=8)

    @pytest.mark.optcheck(seed=3)
    @pytest.mark.parametrize("x", [pytest.param(0, marks=pytest.mark.optcheck(epochs=5)), 1])
    def test_f(self, x):
        pass

def test_unmarked():
    pass
""")
    by_name = {item.name: item for item in items}
    assert marker_kwargs(by_name["test_f[0]"]) == {"epochs": 5, "seed": 3, "batch_size": 8}
    assert marker_kwargs(by_name["test_f[1]"]) == {"epochs": 3, "seed": 3, "batch_size": 8}
    assert marker_kwargs(by_name["test_unmarked"]) == {"epochs": 3, "seed": 1}
    spec, marked = spec_for(by_name["test_f[1]"])
    assert marked is True and spec == Spec.from_kwargs({"epochs": 3, "seed": 3, "batch_size": 8})


def test_an_unmarked_item_has_the_default_spec(pytester: pytest.Pytester) -> None:
    (item,) = _items(pytester, "def test_a():\n    pass\n")
    assert marker_kwargs(item) is None and not is_marked(item)
    assert spec_for(item) == (Spec(), False)


def test_a_bad_marker_raises_a_spec_error(pytester: pytest.Pytester) -> None:
    (item,) = _items(pytester, "import pytest\n@pytest.mark.optcheck(epochz=3)\ndef test_a():\n    pass\n")
    assert is_marked(item)
    with pytest.raises(SpecError, match="epochz"):
        spec_for(item)
