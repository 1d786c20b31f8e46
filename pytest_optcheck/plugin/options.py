"""Every option of the plugin, declared once: its command-line flag, its ini key, its help,
and how its value is read into :class:`Settings`.

One precedence rule for all of them: a command-line option beats the ini value, which beats
the built-in default (tolerances are the exception on purpose: the ini and the command line
are two *layers*, merged field by field). Adding an option is adding one row to
:data:`OPTIONS` and one field to :class:`Settings`.

Nothing here imports numpy, torch or matplotlib: this runs at ``pytest_configure`` of every
session, optcheck tests or not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..engine.tolerance import ToleranceError, parse_tolerance_lines
from ..errors import OptcheckError
from ..run.devices import DEVICE_PATTERN

GOLDEN_KEYS = ("none", "torch-minor")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved run-wide settings (see :data:`OPTIONS` for where each comes from)."""

    enabled: bool = False
    devices: tuple[str, ...] = ("cpu",)
    golden_root: Path = Path("golden")
    rootdir: Path = Path(".")
    golden_key: str = "none"
    ini_tolerances: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    cli_tolerances: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    report_dir: Path | None = None
    sensitivity: bool = False
    resume: bool = False
    parity: bool = False
    prune: bool = False
    update: bool = False
    threads: int | None = None
    calibrate: int = 0


# -- value parsers: (value, where) -> setting -----------------------------------------------


def parse_devices(value: Any, where: str) -> tuple[str, ...]:
    text = str(value or "cpu")
    devices = tuple(d.strip() for d in text.replace(";", ",").split(",") if d.strip())
    if not devices:
        raise OptcheckError(f"optcheck: {where}={text!r} names no device; use e.g. cpu or cpu,cuda.")
    for device in devices:
        if not DEVICE_PATTERN.match(device):
            raise OptcheckError(
                f"optcheck: {where}={text!r}: unknown device {device!r}; "
                f"use cpu, cuda, cuda:N or mps, comma-separated (e.g. cpu,cuda)."
            )
    return tuple(dict.fromkeys(devices))


def parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise OptcheckError(f"optcheck: {where}={value!r} must be true or false.")


def parse_threads(value: Any, where: str) -> int | None:
    text = str(value or "").strip().lower()
    if text in ("", "none", "auto"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise OptcheckError(f"optcheck: {where}={value!r} must be a positive integer (or none).")
    return int(text)


def parse_calibrate(value: Any, where: str) -> int:
    text = str(value if value is not None else "").strip()
    if text == "":
        return 0
    if not text.isdigit():
        raise OptcheckError(
            f"optcheck: {where}={value!r} must be a whole number of replicas >= 0 (0: off), e.g. 8 to record "
            f"goldens with the noise envelope of 8 ulp-perturbed replicas."
        )
    return int(text)


def parse_golden_key(value: Any, where: str) -> str:
    key = str(value or "none").strip()
    if key not in GOLDEN_KEYS:
        raise OptcheckError(f"optcheck: {where}={key!r} must be one of {', '.join(GOLDEN_KEYS)}.")
    return key


def parse_tolerances(value: Any, where: str) -> dict[str, dict[str, Any]]:
    try:
        return parse_tolerance_lines(value or [], where=where)
    except ToleranceError as exc:
        raise OptcheckError(str(exc)) from None


def parse_text(value: Any, where: str) -> str | None:
    return str(value) if value not in (None, "") else None


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: where a user sets it and how its value becomes a setting."""

    setting: str
    help: str
    parse: Callable[[Any, str], Any] = parse_text
    flag: str | None = None
    ini: str | None = None
    #: argparse action of the flag: "store" (takes a value), "store_true", "append".
    action: str = "store"
    metavar: str | None = None
    ini_type: str = "string"
    ini_default: Any = ""
    #: The ini value is its own layer, read into ``ini_setting`` (tolerances).
    ini_setting: str | None = None

    @property
    def dest(self) -> str:
        """``config.option`` attribute: the flag's name (``--optcheck-device`` -> ``optcheck_device``)."""
        return self.flag.lstrip("-").replace("-", "_") if self.flag else ""


OPTIONS: tuple[Option, ...] = (
    Option("enabled", "Run tests marked @pytest.mark.optcheck (skipped otherwise).", parse_bool,
           flag="--optcheck", ini="optcheck", action="store_true", ini_type="bool", ini_default=False),
    Option("devices", "Comma-separated devices to run every optcheck test on, e.g. cpu,cuda (default cpu). "
           "Missing devices skip.", parse_devices, flag="--optcheck-device", ini="optcheck_devices",
           metavar="DEVICES", ini_default="cpu"),
    Option("golden_root", "Root folder of golden files, relative to the rootdir (default golden).",
           flag="--optcheck-golden-dir", ini="optcheck_golden_dir", metavar="DIR", ini_default="golden"),
    Option("golden_key", "Keep goldens per torch version: none or torch-minor.", parse_golden_key,
           ini="optcheck_golden_key", ini_default="none"),
    Option("cli_tolerances", "Tolerance for a series, e.g. 'loss: rtol=1e-3, mode=final' or '*: atol=1e-9'; "
           "repeatable. Precedence: check() > marker > this option > ini optcheck_tolerance.", parse_tolerances,
           flag="--optcheck-tolerance", ini="optcheck_tolerance", action="append", metavar="SERIES:FIELDS",
           ini_type="linelist", ini_default=[], ini_setting="ini_tolerances"),
    Option("report_dir", "Write a PNG per check, index.html and summary.json to DIR.",
           flag="--optcheck-report", metavar="DIR"),
    Option("sensitivity", "Also run each declarative check with every optimizer step scaled by 1.01 and "
           "list checks whose tolerance would not notice it.", parse_bool,
           flag="--optcheck-sensitivity", action="store_true"),
    Option("resume", "Also check that each declarative check's run resumes from a checkpoint (saved halfway, "
           "loaded into fresh objects) exactly as it runs straight through.", parse_bool,
           flag="--optcheck-resume", action="store_true"),
    Option("parity", "Also check each declarative check's optimizer against its other implementations "
           "(for-loop, foreach, fused), step by step.", parse_bool,
           flag="--optcheck-parity", action="store_true"),
    Option("threads", "Intra-op threads for the reference loop (default: torch's). 1 makes CPU runs "
           "independent of the core count and suits pytest -n.", parse_threads,
           flag="--optcheck-threads", ini="optcheck_threads", metavar="N"),
    Option("calibrate", "Record goldens of declarative checks with the noise envelope of N ulp-perturbed "
           "replicas (0: off); the marker key calibrate wins.", parse_calibrate,
           ini="optcheck_calibrate", ini_default="0"),
    Option("prune", "Delete orphaned goldens (no collected test owns them) on a full, green run.", parse_bool,
           flag="--optcheck-prune", action="store_true"),
)


def add_options(parser: Any) -> None:
    """Declare every flag (in the ``optcheck`` help group) and every ini key."""
    group = parser.getgroup("optcheck", "optcheck: regression checks of training behaviour")
    for option in OPTIONS:
        if option.flag:
            extra: dict[str, Any] = {"metavar": option.metavar} if option.action != "store_true" else {}
            default = False if option.action == "store_true" else None
            ini_hint = f" (ini: {option.ini})" if option.ini else ""
            group.addoption(option.flag, dest=option.dest, action=option.action, default=default,
                            help=option.help + ini_hint, **extra)
        if option.ini:
            parser.addini(option.ini, option.help, type=option.ini_type, default=option.ini_default)


def build_settings(*, rootdir: Path, option: Mapping[str, Any], ini: Mapping[str, Any]) -> Settings:
    """Resolve Settings from command-line values (None/False/[] = not given) and ini values."""
    values: dict[str, Any] = {"rootdir": rootdir, "update": bool(option.get("update_snapshots"))}
    for opt in OPTIONS:
        given = option.get(opt.dest) if opt.flag else None
        ini_value = ini.get(opt.ini) if opt.ini else None
        if opt.ini_setting:  # two layers, each parsed on its own
            values[opt.setting] = opt.parse(given, opt.flag or "")
            values[opt.ini_setting] = opt.parse(ini_value, f"ini {opt.ini}")
        elif given not in (None, False, []):
            values[opt.setting] = opt.parse(given, opt.flag or "")
        elif opt.ini is not None:
            values[opt.setting] = opt.parse(ini_value, f"ini {opt.ini}")
        else:
            values[opt.setting] = opt.parse(given, opt.flag or "")
    values["golden_root"] = (rootdir / (values["golden_root"] or "golden")).resolve()
    values["report_dir"] = Path(values["report_dir"]).resolve() if values["report_dir"] else None
    return Settings(**values)


def read_settings(config: Any) -> Settings:
    """The Settings of a pytest session (its parsed options and ini file)."""
    ini = {opt.ini: config.getini(opt.ini) for opt in OPTIONS if opt.ini}
    return build_settings(rootdir=config.rootpath, option=vars(config.option), ini=ini)
