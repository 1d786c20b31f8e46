"""plugin/options.py: each option's parser, its flag and ini key, and the precedence
command line > ini > default, read from plain values (no pytest session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_optcheck.errors import OptcheckError
from pytest_optcheck.plugin.options import (
    OPTIONS,
    Settings,
    add_options,
    build_settings,
    parse_bool,
    parse_calibrate,
    parse_devices,
    parse_golden_key,
    parse_text,
    parse_threads,
    parse_tolerances,
)


def test_devices_are_split_stripped_and_deduplicated_in_order() -> None:
    assert parse_devices(None, "w") == ("cpu",)
    assert parse_devices("", "w") == ("cpu",)
    assert parse_devices(" cuda ; cpu,cuda:1 , cuda", "w") == ("cuda", "cpu", "cuda:1")
    assert parse_devices("mps", "w") == ("mps",)


def test_bad_devices_name_the_option_and_the_device() -> None:
    with pytest.raises(OptcheckError) as empty:
        parse_devices(" , ;", "--optcheck-device")
    assert str(empty.value) == "optcheck: --optcheck-device=' , ;' names no device; use e.g. cpu or cpu,cuda."
    with pytest.raises(OptcheckError) as unknown:
        parse_devices("cpu,gpu", "ini optcheck_devices")
    assert str(unknown.value) == (
        "optcheck: ini optcheck_devices='cpu,gpu': unknown device 'gpu'; "
        "use cpu, cuda, cuda:N or mps, comma-separated (e.g. cpu,cuda).")


@pytest.mark.parametrize("text", ["1", "true", "YES", " On "])
def test_true_words(text: str) -> None:
    assert parse_bool(text, "w") is True


@pytest.mark.parametrize("text", ["", "0", "False", "no", " OFF "])
def test_false_words(text: str) -> None:
    assert parse_bool(text, "w") is False


def test_bools_pass_through_and_other_words_are_refused() -> None:
    assert parse_bool(True, "w") is True and parse_bool(False, "w") is False
    with pytest.raises(OptcheckError) as error:
        parse_bool("maybe", "ini optcheck")
    assert str(error.value) == "optcheck: ini optcheck='maybe' must be true or false."


def test_threads() -> None:
    for unset in (None, "", " None ", "AUTO"):
        assert parse_threads(unset, "w") is None
    assert parse_threads(" 4 ", "w") == 4
    assert parse_threads(1, "w") == 1
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(OptcheckError) as error:
            parse_threads(bad, "--optcheck-threads")
        assert str(error.value) == f"optcheck: --optcheck-threads={bad!r} must be a positive integer (or none)."


def test_calibrate() -> None:
    assert parse_calibrate(None, "w") == 0
    assert parse_calibrate(" ", "w") == 0
    assert parse_calibrate(0, "w") == 0
    assert parse_calibrate(" 8 ", "w") == 8
    with pytest.raises(OptcheckError) as error:
        parse_calibrate("-2", "ini optcheck_calibrate")
    assert str(error.value) == (
        "optcheck: ini optcheck_calibrate='-2' must be a whole number of replicas >= 0 (0: off), e.g. 8 to "
        "record goldens with the noise envelope of 8 ulp-perturbed replicas.")


def test_golden_key() -> None:
    assert parse_golden_key(None, "w") == "none"
    assert parse_golden_key(" torch-minor ", "w") == "torch-minor"
    with pytest.raises(OptcheckError) as error:
        parse_golden_key("torch", "ini optcheck_golden_key")
    assert str(error.value) == "optcheck: ini optcheck_golden_key='torch' must be one of none, torch-minor."


def test_tolerances_parse_and_their_errors_become_optcheck_errors() -> None:
    assert parse_tolerances(None, "w") == {}
    assert parse_tolerances(["loss: rtol=1e-3", "*: atol=1e-9"], "w") == {"loss": {"rtol": 1e-3},
                                                                            "*": {"atol": 1e-9}}
    with pytest.raises(OptcheckError) as error:
        parse_tolerances(["rtol=1e-3"], "--optcheck-tolerance")
    assert type(error.value) is OptcheckError
    assert str(error.value).startswith("optcheck: --optcheck-tolerance: cannot read 'rtol=1e-3'")
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_text() -> None:
    assert parse_text(None, "w") is None and parse_text("", "w") is None
    assert parse_text("out", "w") == "out" and parse_text(Path("out"), "w") == "out"


def test_flags_and_their_config_attributes() -> None:
    by_setting = {o.setting: o for o in OPTIONS}
    assert by_setting["devices"].dest == "optcheck_device"
    assert by_setting["golden_root"].dest == "optcheck_golden_dir"
    assert by_setting["golden_key"].dest == ""  # ini only
    flags = {o.flag for o in OPTIONS if o.flag}
    assert flags == {"--optcheck", "--optcheck-device", "--optcheck-golden-dir", "--optcheck-tolerance",
                     "--optcheck-report", "--optcheck-sensitivity", "--optcheck-resume", "--optcheck-parity",
                     "--optcheck-threads", "--optcheck-prune"}
    inis = {o.ini for o in OPTIONS if o.ini}
    assert inis == {"optcheck", "optcheck_devices", "optcheck_golden_dir", "optcheck_golden_key",
                    "optcheck_tolerance", "optcheck_threads", "optcheck_calibrate"}


def _settings(tmp_path: Path, option: dict | None = None, ini: dict | None = None) -> Settings:
    """As a session reads them: every flag parsed from an empty command line (then ``option``
    on top) and every ini key present (its default when the file has none)."""
    parser = pytest.Parser(_ispytest=True)
    add_options(parser)
    given = {**vars(parser.parse([])), "update_snapshots": False, **(option or {})}
    values = {o.ini: o.ini_default for o in OPTIONS if o.ini}
    return build_settings(rootdir=tmp_path, option=given, ini={**values, **(ini or {})})


def test_defaults(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings == Settings(rootdir=tmp_path, golden_root=(tmp_path / "golden").resolve())
    assert settings.enabled is False and settings.devices == ("cpu",) and settings.golden_key == "none"
    assert settings.ini_tolerances == {} and settings.cli_tolerances == {} and settings.report_dir is None
    assert (settings.sensitivity, settings.resume, settings.parity, settings.prune, settings.update) == (
        False, False, False, False, False)
    assert settings.threads is None and settings.calibrate == 0


def test_the_command_line_beats_the_ini_which_beats_the_default(tmp_path: Path) -> None:
    ini = {"optcheck": True, "optcheck_devices": "cuda", "optcheck_golden_dir": "g_ini", "optcheck_threads": "2",
           "optcheck_calibrate": "3", "optcheck_golden_key": "torch-minor"}
    from_ini = _settings(tmp_path, {"optcheck_device": None, "optcheck": False, "optcheck_golden_dir": None}, ini)
    assert from_ini.enabled is True and from_ini.devices == ("cuda",) and from_ini.threads == 2
    assert from_ini.golden_root == (tmp_path / "g_ini").resolve() and from_ini.calibrate == 3
    assert from_ini.golden_key == "torch-minor"
    option = {"optcheck_device": "cpu,cuda", "optcheck_golden_dir": "g_cli", "optcheck_threads": "1"}
    from_cli = _settings(tmp_path, option, ini)
    assert from_cli.devices == ("cpu", "cuda") and from_cli.threads == 1
    assert from_cli.golden_root == (tmp_path / "g_cli").resolve()


def test_an_ini_error_names_the_ini_key_and_a_flag_error_the_flag(tmp_path: Path) -> None:
    with pytest.raises(OptcheckError, match=r"^optcheck: ini optcheck_devices='gpu'"):
        _settings(tmp_path, ini={"optcheck_devices": "gpu"})
    with pytest.raises(OptcheckError, match=r"^optcheck: --optcheck-device='gpu'"):
        _settings(tmp_path, option={"optcheck_device": "gpu"}, ini={"optcheck_devices": "cpu"})
    with pytest.raises(OptcheckError, match=r"^optcheck: --optcheck-threads='0'"):
        _settings(tmp_path, option={"optcheck_threads": "0"})


def test_flag_only_options_and_the_report_folder(tmp_path: Path) -> None:
    option = {"optcheck_sensitivity": True, "optcheck_resume": True, "optcheck_parity": True,
              "optcheck_prune": True, "optcheck_report": "out", "update_snapshots": True}
    settings = _settings(tmp_path, option)
    assert (settings.sensitivity, settings.resume, settings.parity, settings.prune, settings.update) == (
        True, True, True, True, True)
    assert settings.report_dir == Path("out").resolve()


def test_tolerances_are_two_layers_each_parsed_on_its_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"optcheck_tolerance": ["loss: rtol=1e-3"]},
                         {"optcheck_tolerance": ["loss: atol=1e-9", "lr: rtol=0"]})
    assert settings.cli_tolerances == {"loss": {"rtol": 1e-3}}
    assert settings.ini_tolerances == {"loss": {"atol": 1e-9}, "lr": {"rtol": 0.0}}
    with pytest.raises(OptcheckError, match=r"^optcheck: ini optcheck_tolerance: cannot read"):
        _settings(tmp_path, ini={"optcheck_tolerance": ["bad"]})
    with pytest.raises(OptcheckError, match=r"^optcheck: --optcheck-tolerance: cannot read"):
        _settings(tmp_path, {"optcheck_tolerance": ["bad"]})


def test_an_empty_golden_dir_falls_back_to_golden(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ini={"optcheck_golden_dir": ""})
    assert settings.golden_root == (tmp_path / "golden").resolve()


def test_every_flag_and_ini_key_is_declared_with_its_help_and_default() -> None:
    parser = pytest.Parser(_ispytest=True)
    add_options(parser)
    group = parser.getgroup("optcheck")
    assert group._arggroup.title == "optcheck: regression checks of training behaviour"
    options = {o.names()[0]: o for o in group.options}
    assert set(options) == {o.flag for o in OPTIONS if o.flag}
    device = options["--optcheck-device"]
    assert device.dest == "optcheck_device" and device.default is None
    assert device.attrs()["metavar"] == "DEVICES"
    assert device.attrs()["help"].endswith("Missing devices skip. (ini: optcheck_devices)")
    enabled = options["--optcheck"]
    assert enabled.default is False and "metavar" not in enabled.attrs()
    assert enabled.attrs()["action"] == "store_true"
    assert options["--optcheck-report"].attrs()["help"] == "Write a PNG per check, index.html and summary.json to DIR."
    assert options["--optcheck-tolerance"].attrs()["action"] == "append"
    namespace = parser.parse(["--optcheck", "--optcheck-device", "cuda", "--optcheck-tolerance", "a: rtol=1",
                              "--optcheck-tolerance", "b: rtol=2"])
    assert namespace.optcheck is True and namespace.optcheck_device == "cuda"
    assert namespace.optcheck_tolerance == ["a: rtol=1", "b: rtol=2"]
    assert namespace.optcheck_prune is False and namespace.optcheck_threads is None
    ini = parser._inidict
    assert set(ini) == {o.ini for o in OPTIONS if o.ini}
    assert ini["optcheck"][1:] == ("bool", False)
    assert ini["optcheck_tolerance"][1:] == ("linelist", [])
    assert ini["optcheck_devices"][1:] == ("string", "cpu")
    assert ini["optcheck_calibrate"][1:] == ("string", "0")
    assert ini["optcheck_threads"][1:] == ("string", "")
    assert ini["optcheck_golden_dir"][0].startswith("Root folder of golden files")
