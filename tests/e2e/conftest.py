"""End-to-end tests: real pytest sessions (pytester) using the plugin as a user would.

Every test under tests/e2e is marked ``e2e`` (``-m e2e`` selects them, ``-m "not e2e"`` the unit
tests), and torch is warmed up once, before the first of them runs, not at import."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A hook of this conftest sees every item of the session: mark only those under tests/e2e.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _warm_up_torch() -> None:
    """pytester's in-process runs restore ``sys.modules`` afterwards, dropping modules first
    imported inside a run; torch cannot load its extensions twice in one process (it
    crashes: "Only a single TORCH_LIBRARY..."). Its optimizers import ``torch._dynamo``
    lazily on the first step, so run each kind of step once here, before any inner run."""
    from pytest_optcheck.declare.spec import RECORDABLE, Spec
    from pytest_optcheck.golden import environment as golden
    from pytest_optcheck.run.train import lr_schedule, train

    for optimizer in ("Adam(lr=0.01)", "LBFGS(lr=0.01)"):
        train(Spec(optimizer=optimizer, epochs=1, batch_size=500, record=RECORDABLE))
    lr_schedule(Spec(scheduler="ReduceLROnPlateau(patience=1)"), 3)
    from pytest_optcheck.run.replicas import replicas

    replicas(Spec(epochs=1, batch_size=500), 1)  # torch.func's vmap, loaded once here
    golden.environment()


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project with a rootdir marker (goldens go to ``<rootdir>/golden``).

    Its sessions, in process and in subprocesses, run their tests in file order: pytest-randomly
    (which shuffles this suite) is switched off inside them, since tests here compare output
    lines and the order goldens are written in."""
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester
