"""End to end: real pytest sessions (pytester) using the plugin as a user would."""

from __future__ import annotations

import pytest

from tests.e2e.goldens import golden_files, read_golden

ADAM = """
import pytest

@pytest.mark.optcheck(optimizer="Adam(lr={lr})", epochs=2)
def test_adam(optcheck):
    optcheck.check()
"""


def test_marked_tests_skip_without_the_flag_and_fixture_tests_run(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.optcheck
        def test_marked(optcheck):
            raise AssertionError("must not run")

        def test_fixture_only(optcheck):
            assert optcheck.spec.optimizer == "SGD(lr=0.01)"
        """
    )
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*optcheck test: run it with `pytest --optcheck`*"])


def test_ini_enables_optcheck(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\noptcheck = true\n")
    project.makepyfile(ADAM.format(lr=0.01))
    result = project.runpytest("--snapshot-update")
    result.assert_outcomes(passed=1)


def test_create_then_pass_then_config_change_fails(project: pytest.Pytester) -> None:
    project.makepyfile(test_it=ADAM.format(lr=0.01))
    missing = project.runpytest("--optcheck")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*no golden for this check yet*",
                                  "*Create it with: pytest --optcheck --snapshot-update 'test_it.py::test_adam[[]cpu[]]'*"])
    assert golden_files(project.path) == []

    created = project.runpytest("--optcheck", "--snapshot-update")
    created.assert_outcomes(passed=1)
    assert golden_files(project.path) == ["golden/test_it/test_adam[cpu].json"]
    created.stdout.fnmatch_lines(["*goldens created (1):*", "*golden/test_it/test_adam[[]cpu[]].json"])

    project.runpytest("--optcheck").assert_outcomes(passed=1)

    project.makepyfile(test_it=ADAM.format(lr=0.0102))
    changed = project.runpytest("--optcheck")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*configuration changed since the golden was recorded*",
                                  "*optimizer: 'Adam(lr=0.01)' -> 'Adam(lr=0.0102)'*"])


def test_golden_header_holds_schema_spec_and_environment(project: pytest.Pytester) -> None:
    project.makepyfile(test_it=ADAM.format(lr=0.01))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    data = read_golden(project.path / "golden/test_it/test_adam[cpu].json")
    assert data["optcheck_golden"] == 2
    assert data["test"] == "test_it.py::test_adam[cpu]"
    assert data["spec"]["optimizer"] == "Adam(lr=0.01)"
    assert data["spec"]["epochs"] == 2
    import torch

    assert data["environment"]["torch"] == torch.__version__
    assert data["environment"]["device"] == "cpu"
    assert data["series"]["lr"] == {"runs": [[[0.01], 2 * 32]]}  # a constant lr: one run
    assert data["steps"] == 2 * 32 == len(data["series"]["loss"])


USER_LOOP = """
import pytest
import torch

LR = {lr}

@pytest.mark.optcheck(epochs=1)
def test_my_loop(optcheck):
    model, optimizer, _ = optcheck.build()
    optimizer.param_groups[0]["lr"] = LR
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = x ** 2
    with optcheck.record(optimizer, model=model) as rec:
        for step in range(20):
            loss = torch.nn.functional.mse_loss(model(x), y)
            {zero_grad}
            loss.backward()
            optimizer.step()
            rec.log(loss=loss)
    optcheck.check(rec.trajectory)
"""


@pytest.mark.parametrize(
    ("lr", "zero_grad", "planted"),
    [(0.0102, "optimizer.zero_grad()", "2% learning-rate change"), (0.01, "pass", "forgotten zero_grad")],
)
def test_planted_change_in_users_own_loop_fails(project: pytest.Pytester, lr: float, zero_grad: str,
                                                planted: str) -> None:
    project.makepyfile(test_loop=USER_LOOP.format(lr=0.01, zero_grad="optimizer.zero_grad()"))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    project.runpytest("--optcheck").assert_outcomes(passed=1)
    project.makepyfile(test_loop=USER_LOOP.format(lr=lr, zero_grad=zero_grad))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*series differ from the golden*", "*loss*", "*first*step*"])


WARMUP = """
import functools
import pytest
from torch.optim.lr_scheduler import LambdaLR

def warmup(step, n={n}):
    return min(1.0, (step + 1) / n)

@pytest.mark.optcheck(scheduler=functools.partial(LambdaLR, lr_lambda=warmup), interval="step")
def test_warmup(optcheck):
    optcheck.check(optcheck.lr_schedule(12))
"""


def test_warmup_off_by_one_fails_on_lr(project: pytest.Pytester) -> None:
    project.makepyfile(test_w=WARMUP.format(n=5))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    project.makepyfile(test_w=WARMUP.format(n=6))
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*lr*", "*rtol=1e-12*"])


def test_marker_levels_merge_closest_wins(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.optcheck(epochs=3, seed=5, optimizer="SGD(lr=0.5)")

        @pytest.mark.optcheck(epochs=4, batch_size=16)
        class TestLevels:
            @pytest.mark.optcheck(batch_size=8, optimizer="Adam(lr=0.1)")
            @pytest.mark.parametrize("case", [
                pytest.param("a", marks=pytest.mark.optcheck(optimizer="RMSprop(lr=0.2)")),
                "b",
            ])
            def test_spec(self, optcheck, case):
                spec = optcheck.spec
                assert (spec.seed, spec.epochs, spec.batch_size) == (5, 4, 8)
                expected = {"a": "RMSprop(lr=0.2)", "b": "Adam(lr=0.1)"}[case]
                assert spec.optimizer == expected
        """
    )
    project.runpytest("--optcheck").assert_outcomes(passed=2)


def test_devices_parametrize_and_missing_cuda_skips_without_writing(project: pytest.Pytester) -> None:
    project.makepyfile(test_dev=ADAM.format(lr=0.01))
    result = project.runpytest("--optcheck", "--optcheck-device=cpu,cuda", "--snapshot-update", "-rs", "-v")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the skip path is not reachable here")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*test_adam[[]cpu[]] PASSED*", "*test_adam[[]cuda[]] SKIPPED*",
                                 "*device 'cuda' is not available here*no golden is written*"])
    assert golden_files(project.path) == ["golden/test_dev/test_adam[cpu].json"]


def test_bad_device_option_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_dev=ADAM.format(lr=0.01))
    result = project.runpytest("--optcheck", "--optcheck-device=gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown device 'gpu'*cpu, cuda*"])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("optimzer='Adam'", "*unknown key 'optimzer' in the marker. Did you mean: optimizer?*"),
        ("optimizer='Adamm(lr=0.1)'", "*unknown optimizer 'Adamm'*Did you mean: Adam*"),
        ("optimizer='Adam(lr=LR)'", "*optimizer='Adam(lr=LR)': argument `LR` is not a literal*"),
        ("optimizer='Adam(lr=0.1, beta=0.9)'", "*beta*Did you mean*betas*"),
        ("epochs='ten'", "*epochs='ten' must be an integer >= 1*"),
        ("scheduler='StepLR(step=4)'", "*StepLR*step*step_size*"),
        ("optimizer='Adam(lr=-1.0)'", "*optimizer*Invalid learning rate*"),
        ("record=['loss', 'lrr']", "*unknown series 'lrr'*Did you mean: lr?*"),
    ],
)
def test_bad_marker_input_fails_cleanly(project: pytest.Pytester, marker: str, expected: str) -> None:
    project.makepyfile(
        f"""
        import pytest

        @pytest.mark.optcheck({marker})
        def test_bad(optcheck):
            optcheck.train()
        """
    )
    result = project.runpytest("--optcheck")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, result.stdout.str()
    result.stdout.fnmatch_lines([expected])
    # No traceback through the plugin's internals, and the message once, not chained twice.
    text = result.stdout.str()
    assert "pytest_optcheck/" not in text
    assert "During handling of the above exception" not in text
    body = text.split("collected 1 item", 1)[1]
    assert sum(line.startswith("optcheck: ") for line in body.splitlines()) == 1, text


def test_markers_only_on_pytest_param_get_device_ids(project: pytest.Pytester) -> None:
    """A test whose only optcheck markers sit on its pytest.param values is still an
    optcheck test: it runs once per device, with [..-cpu] / [..-cuda] ids."""
    project.makepyfile(
        test_params="""
        import pytest

        @pytest.mark.parametrize("label", [
            pytest.param("sgd", marks=pytest.mark.optcheck(optimizer="SGD(lr=0.1)")),
            pytest.param("ada", marks=pytest.mark.optcheck(optimizer="Adam(lr=0.1)")),
        ])
        def test_opt(optcheck, label):
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_fixture_only(optcheck, n):
            pass
        """
    )
    result = project.runpytest("--optcheck", "--optcheck-device=cpu,cuda", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "test_params.py::test_opt[sgd-cpu]", "test_params.py::test_opt[sgd-cuda]",
        "test_params.py::test_opt[ada-cpu]", "test_params.py::test_opt[ada-cuda]",
        "test_params.py::test_fixture_only[1]", "test_params.py::test_fixture_only[2]",
    ])


def test_strict_markers_help_fixtures_and_header(project: pytest.Pytester) -> None:
    project.makepyfile(ADAM.format(lr=0.01))
    project.runpytest("--strict-markers", "--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    help_text = project.runpytest("--help").stdout.str()
    assert "optcheck: regression checks of training behaviour" in help_text
    for option in ("--optcheck ", "--optcheck-device", "--optcheck-report", "--optcheck-tolerance"):
        assert option in help_text
    fixtures = project.runpytest("--fixtures").stdout.str()
    assert "optcheck -- " in fixtures and "trajectory_snapshot -- " in fixtures
    header = project.runpytest("--optcheck", "--co").stdout.str()
    assert "optcheck: enabled; torch " in header and "devices cpu; goldens in golden" in header


def test_plugin_can_be_disabled(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_plain():
            pass
        """
    )
    result = project.runpytest("-p", "no:optcheck", "--optcheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option is gone with the plugin


HEAVY_PROBE = """
import atexit
import sys

# At interpreter exit: after every hook of the session, the plugin's last ones included.
atexit.register(lambda: print("HEAVY:" + ",".join(m for m in ("numpy", "torch", "matplotlib")
                                                  if m in sys.modules) + ":END", flush=True))
"""


def test_a_session_without_optcheck_tests_imports_no_numpy_torch_or_matplotlib(project: pytest.Pytester) -> None:
    """Configuring the plugin — tolerances from the command line and the ini included —
    must cost a plain session nothing: a real session (a subprocess, since this process has
    torch loaded already) looks at sys.modules when it ends."""
    project.makeini("[pytest]\noptcheck_tolerance =\n    loss: rtol=1e-3, mode=final\n")
    project.makeconftest(HEAVY_PROBE)
    project.makepyfile(test_plain="def test_a():\n    assert True\n")
    result = project.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--optcheck",
                                          "--optcheck-tolerance", "*: atol=1e-9", "--optcheck-device=cpu,cuda")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["optcheck: enabled; torch *"])
    # Other plugins installed beside optcheck may import them (pytest-benchmark imports
    # numpy): what optcheck must not add is measured against the same session without it.
    without = project.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:optcheck")
    without.assert_outcomes(passed=1)
    assert heavy_modules(result) == heavy_modules(without), result.stdout.str()


def heavy_modules(result: pytest.RunResult) -> str:
    (line,) = [line for line in result.outlines if line.startswith("HEAVY:")]
    return line


def test_trajectory_snapshot_fixture(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_snap="""
        import pytest

        @pytest.mark.optcheck(optimizer="SGD(lr=0.1)", scheduler="MultiStepLR(milestones=[2, 4], gamma=0.5)")
        def test_schedule(optcheck, trajectory_snapshot):
            assert optcheck.lr_schedule(6) == trajectory_snapshot
            assert optcheck.lr_schedule(3) == trajectory_snapshot(name="short")
        """
    )
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    assert golden_files(project.path) == [
        "golden/test_snap/test_schedule[cpu]--short.json",
        "golden/test_snap/test_schedule[cpu].json",
    ]
    project.runpytest("--optcheck").assert_outcomes(passed=1)


def test_threads_option_runs_against_the_same_goldens(project: pytest.Pytester) -> None:
    project.makepyfile(test_it=ADAM.format(lr=0.01))
    project.runpytest("--optcheck", "--snapshot-update").assert_outcomes(passed=1)
    project.runpytest("--optcheck", "--optcheck-threads=1").assert_outcomes(passed=1)
    bad = project.runpytest("--optcheck", "--optcheck-threads=zero")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--optcheck-threads='zero' must be a positive integer*"])


def test_a_bug_in_the_users_own_model_points_at_the_users_code(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_model="""
        import pytest
        import torch

        class Broken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                raise RuntimeError("bug in my model")

        @pytest.mark.optcheck(model=Broken)
        def test_it(optcheck):
            optcheck.train()
        """
    )
    result = project.runpytest("--optcheck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "optcheck: could not build model='test_model.Broken': RuntimeError: bug in my model",
        "(at test_model.py:11)",
        "caused by (most recent call last):",
        "*test_model.py*line 7, in __init__",
    ])
    assert "pytest_optcheck/" not in result.stdout.str()
