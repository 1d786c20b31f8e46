"""Mutation testing: would the fast unit tests notice a one-token bug in a module?

Run it after changing a module with logic, and keep docs/mutation-scores.md's table honest:

    python benchmarks/mutation.py                       # the four DEFAULT modules, ~6 min on 2 cores
    python benchmarks/mutation.py golden/layout.py      # one module (any key of MODULES)
    python benchmarks/mutation.py --diff                # also print each survivor's diff
    python benchmarks/mutation.py --changed HEAD~1      # CI: the modules the last commit touched

It copies the package and the unit tests into a scratch folder (the work tree and its
``mutants/`` stay untouched), writes a ``[mutmut]`` section into the copy's setup.cfg, runs
``mutmut run`` there with one worker, and prints per module: mutants, killed, equivalent
(listed in :data:`EQUIVALENT` with the reason, left out of the score), surviving, and the
score = killed / (mutants - equivalent). It exits 1 when a module scores below 90%.

``--changed BASE`` (CI) mutates the modules ``git diff --name-only BASE`` names, exits 0 at once
when none changed, fails on a changed module with logic that is neither in :data:`MODULES` nor
in :data:`NOT_MUTATED` (so a new module cannot arrive unguarded), and stops mutmut after
``--timeout`` seconds (reported, not failed: the run is bounded, the score then incomplete).

mutmut (3.x) was picked by measurement on this 2-core machine (docs/mutation.md): it
forks one warmed-up pytest process per mutant, while cosmic-ray and pytest-gremlins start
a fresh interpreter — and torch, through tests/conftest.py — for every mutant or batch.
Install it into the project's environment (requirements-dev.txt pins it).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pytest_optcheck"

_E, _G, _D, _R, _C_, _P, _RP = (f"tests/unit/{layer}/" for layer in
                                 ("engine", "golden", "declare", "run", "checks", "plugin", "report"))
_IN = "tests/unit/integrations/"
#: Module (under pytest_optcheck/) -> the fast unit tests that guard it. Every module with logic
#: is here or in :data:`NOT_MUTATED` (with the reason); ``--changed`` fails on a module in neither,
#: so a new module cannot arrive unguarded.
MODULES: dict[str, list[str]] = {
    # engine: pure numpy
    "engine/compare.py": [_E + "test_compare.py", _E + "test_compare_edges.py", _E + "test_compare_calibration.py",
                          _E + "test_messages.py", _E + "test_budget_rounding.py", _E + "test_compare_verdict_dict.py",
                          _E + "test_thinning.py", _E + "test_thinning_buckets.py", _E + "test_epoch_series.py",
                          _E + "test_per_epoch_text.py", _E + "test_compare_thinned_budget.py", _E + "test_outcome.py"],
    "engine/tolerance.py": [_E + "test_compare.py", _E + "test_tolerance.py", _E + "test_messages.py",
                            _E + "test_tolerance_layer_order.py"],
    "engine/messages.py": [_E + "test_messages.py", _E + "test_messages_whole.py", _E + "test_compare.py"],
    "engine/stepwise.py": [_E + "test_stepwise.py", _E + "test_stepwise_reference.py", _E + "test_stepwise_verdicts.py"],
    "engine/envelope.py": [_E + "test_envelope.py", _E + "test_envelope_facts.py", _E + "test_compare_calibration.py",
                           _G + "test_calibration_block.py"],
    "engine/trajectory.py": [_E + "test_trajectory.py", _E + "test_trajectory_contract.py", _G + "test_store.py",
                             _E + "test_compare.py",
                             _E + "test_epoch_series.py", _E + "test_thinning.py", _E + "test_thinning_buckets.py",
                             _G + "test_long_run_format.py", _G + "test_text.py", _E + "test_compare_edges.py",
                             _E + "test_trajectory_types.py"],
    "engine/bound.py": [_E + "test_bound.py", _E + "test_compare.py"],
    "engine/thinning.py": [_E + "test_thinning.py", _E + "test_thinning_buckets.py", _G + "test_long_run_format.py"],
    "engine/per_epoch.py": [_E + "test_epoch_series.py", _E + "test_per_epoch_text.py"],
    "engine/outcome.py": [_E + "test_outcome.py", _E + "test_envelope.py", _RP + "test_report.py",
                          _C_ + "test_recalibrate_on_update.py"],
    # declare
    "declare/spec.py": [_D + "test_spec.py", _D + "test_spec_validation.py", _D + "test_spec_units.py"],
    "declare/catalog.py": [_D + "test_catalog.py", _D + "test_catalog_messages.py", _D + "test_catalog_builders.py"],
    "declare/signatures.py": [_D + "test_catalog.py", _D + "test_argument_hint.py", _D + "test_signatures.py"],
    "declare/problems.py": [_D + "test_build.py", _D + "test_problems.py"],
    "declare/build.py": [_D + "test_build.py", _D + "test_build_wiring.py"],
    # the package's own errors, and the `optcheck` fixture's object
    "errors.py": ["tests/unit/test_errors.py"],
    "handle.py": ["tests/unit/test_handle.py"],
    # the lazy public names: __getattr__ called directly (a forked worker has them resolved already)
    "__init__.py": ["tests/unit/test_public_names.py"],
    # the command line, in process (test_cli.py's two subprocess tests kill nothing here but cost little)
    "cli.py": ["tests/unit/cli/test_cli_in_process.py", "tests/unit/cli/test_cli.py"],
    # golden store
    "golden/format.py": [_G + "test_store.py", _G + "test_text.py", _G + "test_calibration_block.py"],
    "golden/layout.py": [_G + "test_store.py", _G + "test_orphans_prefix.py", _G + "test_layout_names.py"],
    "golden/files.py": [_G + "test_store.py", _G + "test_atomic_write_fsync.py", _G + "test_files.py"],
    "golden/orphans.py": [_G + "test_orphans_prefix.py", _G + "test_orphans.py"],
    "golden/environment.py": [_G + "test_environment.py", _G + "test_store.py"],
    # run: the reference loop and the recorder
    "run/train.py": [_R + "test_train.py", _R + "test_record.py", _R + "test_train_parts.py"],
    "run/conventions.py": [_R + "test_train.py", _R + "test_conventions.py"],
    "run/describe.py": [_R + "test_describe.py", _R + "test_describe_wrappers.py"],
    # not tests/unit/run/test_replicas_acceptance.py: it trains with two threads, and a second intra-op thread
    # deadlocks in mutmut's forked workers (each such mutant then "timed out" after minutes, 2026-12-04)
    "run/replicas.py": [_R + "test_replicas.py", _R + "test_replicas_parts.py"],
    "run/record/recorder.py": [_R + "test_recorder_parts.py", _R + "test_record.py", _R + "test_record_sync.py",
                               _R + "test_record_skipped.py", _R + "test_record_wrappers.py", _R + "test_record_nested_steps.py"],
    "run/record/series.py": [_R + "test_record.py", _R + "test_record_sync.py", _R + "test_record_series.py"],
    "run/record/norms.py": [_R + "test_record.py", _R + "test_record_norms.py"],
    "run/record/steps.py": [_R + "test_record_nested_steps.py"],
    "run/record/watch.py": [_R + "test_record_watch.py", _R + "test_record_wrappers.py", _R + "test_record_skipped.py"],
    "run/record/world.py": [_R + "test_world.py", _R + "test_world_exchanges.py"],
    "run/autocast.py": [_R + "test_autocast_described.py"],
    "run/devices.py": [_R + "test_devices.py"],
    "run/record/hosts.py": [_R + "test_record_sync.py", _R + "test_record.py"],
    # checks
    "checks/golden_check.py": [_C_ + "test_golden_check.py", _C_ + "test_recalibrate_on_update.py", _RP + "test_report.py",
                               _E + "test_envelope.py"],
    "checks/sensitivity.py": [_C_ + "test_sensitivity_parts.py", _C_ + "test_sensitivity.py"],
    "checks/differential/checkpoint.py": [_C_ + "test_checkpoint_parts.py", _C_ + "test_resume.py",
                                          _C_ + "test_resume_lost_state.py"],
    "checks/differential/resume.py": [_C_ + "test_checkpoint_parts.py", _C_ + "test_resume.py",
                                      _C_ + "test_resume_lost_state.py"],
    "checks/differential/parity.py": [_C_ + "test_parity_texts.py", _C_ + "test_parity.py"],
    "checks/differential/implementations.py": [_C_ + "test_implementation_variants.py", _C_ + "test_parity.py"],
    "checks/differential/differences.py": [_C_ + "test_difference_texts.py", _C_ + "test_resume_lost_state.py",
                                           _C_ + "test_parity.py", _C_ + "test_defaults.py"],
    "checks/differential/tolerances.py": [_C_ + "test_resume.py", _C_ + "test_parity.py"],
    "checks/differential/states.py": [_C_ + "test_step_states.py", _C_ + "test_resume_lost_state.py"],
    "checks/differential/processes.py": [_C_ + "test_processes_parts.py"],
    "checks/differential/distributed.py": [_C_ + "test_processes_parts.py"],
    # report
    # not test_picture_pixels.py (it renders: seconds a mutant); test_picture_drawing.py pins the same on the Axes
    "report/picture.py": [_RP + "test_picture_drawing.py", _RP + "test_picture_parts.py", _RP + "test_first_failure_mark.py",
                          _RP + "test_picture_marks.py"],
    "report/plotting.py": [_RP + "test_plotting_parts.py", _RP + "test_picture_speed.py", "tests/unit/cli/test_cli.py"],
    "report/index.py": [_RP + "test_report.py", _RP + "test_index_page.py"],
    "report/obtained.py": [_RP + "test_obtained.py"],
    "report/results.py": [_RP + "test_results.py", _RP + "test_report.py", _P + "test_xdist_merge.py"],
    # plugin glue: the parts with unit tests
    "plugin/xdist.py": [_P + "test_xdist_merge.py", _P + "test_xdist_node_down.py"],
    "plugin/options.py": [_P + "test_options.py"],
    # a gloo group of two: this process rank 0, a child process rank 1 (seconds a mutant)
    "plugin/ranks.py": [_P + "test_ranks.py"],
    # pytester sessions in process, torch-free: they run in mutmut's forked workers (~0.2 s a mutant)
    "plugin/gating.py": ["tests/e2e/test_gating.py"],
    "plugin/failures.py": ["tests/e2e/test_clean_failures.py"],
    "plugin/pruning.py": ["tests/e2e/test_pruning_sessions.py"],
    "plugin/snapshot.py": ["tests/e2e/test_snapshot_sessions.py"],
    "plugin/__init__.py": ["tests/e2e/test_plugin_sessions.py"],
    # integrations: real trainers, tiny models, a few steps (their imports happen once, before mutmut forks)
    "integrations/base.py": [_IN + "test_base.py", _IN + "test_hf_events.py", _IN + "test_integrations.py",
                             _IN + "test_callbacks_keep_and_name.py", _IN + "test_record_every_callback.py",
                             _IN + "test_skipped_steps.py"],
    "integrations/lightning.py": [_IN + "test_integrations.py", _IN + "test_callbacks_keep_and_name.py"],
    "integrations/pytorch_lightning.py": [_IN + "test_callbacks_keep_and_name.py"],
    "integrations/hf.py": [_IN + "test_hf_events.py", _IN + "test_base.py", _IN + "test_integrations.py",
                           _IN + "test_callbacks_keep_and_name.py"],
    "integrations/syrupy.py": [_IN + "test_syrupy_parts.py", "tests/e2e/test_syrupy_sessions.py"],
    # in-process sessions too; those needing a trained run train a tiny spec (torch._dynamo imported first)
    "plugin/checking.py": ["tests/e2e/test_checking_fast_sessions.py"],
}
#: Modules not mutated, and why. pytester's in-process sessions do run in mutmut's forked workers
#: (plugin/gating.py, failures, pruning, snapshot above: 0.2-1 s a mutant) when the test module
#: imports numpy (and torch with one thread, matplotlib) before its first inner session and trains
#: nothing; the suite's torch warm-up (tests/e2e/conftest.py: training runs) is what hangs in a fork.
NOT_MUTATED: dict[str, str] = {
    "__main__.py": "one line: python -m pytest_optcheck runs cli.main",
    "run/own_loop.py": "its one function is a @property, which mutmut 3 leaves unmutated (0 mutants, measured "
                        "2026-12-04); tests/unit/run/test_own_loop.py pins what it describes",
}
#: Run when no module is named. engine/messages.py (670 mutants, most of them in sentences)
#: would take the run past 10 minutes on 2 cores: name it to include it.
DEFAULT = ["engine/compare.py", "engine/tolerance.py", "declare/spec.py", "golden/format.py"]

#: Mutants that cannot change behaviour, excluded from the score: name -> why. Names are
#: those of the 2026-11-25 run (docs/mutation.md); mutmut numbers mutants per function, so
#: editing a function renumbers its mutants: re-check this list (``--diff``) when it does.
_C, _S, _F = "pytest_optcheck.engine.compare.", "pytest_optcheck.declare.spec.", "pytest_optcheck.golden.format."
_L, _FI = "pytest_optcheck.golden.layout.", "pytest_optcheck.golden.files."
_LOCAL_LABEL = ("a local label ('+cpu') follows the release numbers: major and minor read the same whether or not "
                "the version is cut at '+' first")
_POSIX_NL = ("newline=None writes '\\n' as os.linesep, which is '\\n' on POSIX, where the suite runs (on Windows "
             "tests/unit/golden/test_store.py's LF-only test would catch it)")
_FLOAT64 = "its inputs are float64 arrays already (as_2d); for integers the rule gives the same booleans"
_NEGATIVE = "any negative fill works: it is only compared with 0 / with differences >= 0"
_NAN = ("summary_data passes everything through json_ready, which writes non-finite floats as strings: no NaN "
        "or inf reaches json.dumps, so allow_nan is never consulted (tests/unit/report/test_index_page.py)")
_CODEC = "codec names are case-insensitive: 'UTF-8' is 'utf-8'"
_HANDLER = "slices at token boundaries are valid UTF-8: no error handler is ever consulted"
_TITLE_LOC = "matplotlib lower-cases a title's loc: 'LEFT' is 'left'"
_COLOR_CASE = "matplotlib's colour names are case-insensitive: 'WHITE' is 'white', 'NONE' is 'none'"
EQUIVALENT: dict[str, str] = {
    _C + "x_outside_tolerance__mutmut_3": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_5": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_8": _FLOAT64,
    _C + "x_outside_tolerance__mutmut_10": _FLOAT64,
    _C + "x_compare_series__mutmut_67": "the initial `passed` (None here) is overwritten once the values are judged",
    _C + "x_compare_series__mutmut_109": "the initial `passed` (True here) is overwritten once the values are judged",
    _C + "x_compare_series__mutmut_141": "only the epoch of _position(...) is used, which batch=None leaves alone",
    _C + "x_compare_series__mutmut_147": "only the batch of _position(...) is used, which epoch=None leaves alone",
    _C + "x__judge_values__mutmut_36": "_summaries(tol, allow, allow): [1] is computed from the same array as [0]",
    _C + "x__fit__mutmut_19": "j <= k for j == k: out[:m, k:] is empty, the (m, 1) column broadcasts into it as a no-op",
    _C + "x__error_stats__mutmut_27": _NEGATIVE,
    _C + "x__error_stats__mutmut_49": _NEGATIVE,
    _C + "x__error_stats__mutmut_60": "only for an empty array, where the next line short-circuits on `not arr.size`",
    _C + "x__nonfinite_name__mutmut_17": "the value is +-inf there (NaN is handled first): > 0, >= 0 and > 1 agree",
    _C + "x__nonfinite_name__mutmut_18": "the value is +-inf there (NaN is handled first): > 0, >= 0 and > 1 agree",
    _C + "x__reach_step__mutmut_1": "comparisons with NaN do not warn in numpy 2: errstate(invalid) changes nothing",
    _C + "x__reach_step__mutmut_21": "astype(None) is astype(float64)",
    _C + "x__reach_bad__mutmut_32": "where current never reaches the target, excess is inf: bad is True already",
    _C + "x__summary_dict__mutmut_1": "Python-float arithmetic on finite or NaN inputs: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_2": "division guarded by `if g`: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_3": "Python-float arithmetic on finite or NaN inputs: no numpy warning to silence",
    _C + "x__summary_dict__mutmut_4": "division guarded by `if g`: no numpy warning to silence",
    _C + "x__worst_group__mutmut_23": _NEGATIVE,
    _C + "x__worst_group__mutmut_25": "only with zero groups, where the caller's g_val[group] raises IndexError anyway",
    _C + "x__worst_group__mutmut_28": "only with zero groups, where the caller's g_val[group] raises IndexError anyway",
    _C + "x_relative_error__mutmut_44": "g == 0 == diff means c == 0, which `same` sets to 0 anyway; else inf either way",
    _C + "x_relative_error__mutmut_52": "g == 0 == diff means c == 0, which `same` sets to 0 anyway",
    _C + "xǁSeriesVerdictǁto_dict__mutmut_4": "dataclasses.asdict already wrote the same tolerance dict",
    _C + "xǁSeriesVerdictǁto_dict__mutmut_5": "dataclasses.asdict already wrote the same tolerance dict",
    _F + "x_dumps__mutmut_19": "ensure_ascii=None is falsy, like False",
    _F + "x_dumps__mutmut_60": "ensure_ascii=None is falsy, like False",
    _F + "x__calibration_lines__mutmut_13": "ensure_ascii=None is falsy, like False",
    _F + "x__calibration_lines__mutmut_22": "ensure_ascii=None is falsy, like False",
    _F + "x_read_golden__mutmut_5": _CODEC,
    _S + "xǁSpecǁcanonical__mutmut_3": "COMPARISON_KEYS are the last two of KEYS: break and continue end the loop alike",
    _S + "xǁSpecǁcanonical__mutmut_23": "key= only names the key in an error, and a Spec's call strings are valid",
    _S + "xǁSpecǁcanonical__mutmut_27": "record is a tuple, which canonical_value turns into the same list",
    _S + "xǁSpecǁcanonical__mutmut_28": "record is a tuple, which canonical_value turns into the same list",
    _S + "x_canonical_value__mutmut_11": "only the key order of a dict: every consumer compares dicts or sorts keys",
    _S + "x_canonical_value__mutmut_12": "only the key order of a dict: every consumer compares dicts or sorts keys",
    _S + "x__lambda_source__mutmut_42": _CODEC,
    _S + "x__lambda_source__mutmut_68": _CODEC,
    _S + "x__lambda_source__mutmut_64": _HANDLER,
    _S + "x__lambda_source__mutmut_69": _HANDLER,
    _S + "x__lambda_source__mutmut_70": _HANDLER,
    _S + "x__lambda_source__mutmut_53": "one line: chunk[-1] is chunk[0], already cut at col1",
    _S + "x__lambda_source__mutmut_55": "one line: chunk[-1] is chunk[0], already cut at col1",
    _S + "x__lambda_source__mutmut_77": "defensive: inspect.signature does not fail on a function with a code object",
    _S + "x__lambda_source__mutmut_78": "defensive: inspect.signature does not fail on a function with a code object",
    # golden/layout.py (2026-12-04 run, docs/mutation-scores.md)
    _L + "x_safe_filename__mutmut_20": _CODEC,
    _L + "x_test_id__mutmut_14": "without a class the node id has two parts: parts[+1] is parts[-1]",
    _L + "x_device_of__mutmut_7": "bracket == -1 slices filename[:0], an empty string that holds no device",
    _L + "x_device_of__mutmut_10": "the one more character is after the last ']', where no device id can end",
    _L + "x_device_of__mutmut_11": "bracket == 0 slices ']' alone, which holds no device",
    _L + "x_device_of__mutmut_12": "bracket == 0 slices ']' alone, which holds no device",
    _L + "x__version_order__mutmut_4": "only called on folders KEY_FOLDER matched: `match` is never None",
    # golden/files.py (2026-12-04 run)
    _FI + "x_new_file_mode__mutmut_3": "the umask set between the two os.umask calls is restored at once; "
                                       "nothing is created in between",
    _FI + "x_read_text__mutmut_4": _CODEC,
    _FI + "x_write_atomic__mutmut_33": _CODEC,
    _FI + "x_write_atomic__mutmut_25": _POSIX_NL,
    _FI + "x_write_atomic__mutmut_29": _POSIX_NL,
    # report/results.py (2026-12-04 run)
    "pytest_optcheck.report.results.xǁResultsǁsorted_records__mutmut_14":
        "the rank of a status outside STATUS_ORDER: any value past the 8 statuses sorts the same",
    "pytest_optcheck.plugin.xdist.x_worker_payload__mutmut_2": "allow_nan=None is falsy, like False",
    # golden/environment.py (2026-12-04 run)
    "pytest_optcheck.golden.environment.x_torch_minor_key__mutmut_3": _LOCAL_LABEL,
    "pytest_optcheck.golden.environment.x__distribution_version__mutmut_12":
        "a module without __file__: '' and 'XXXX' both lack 'site-packages', so both end the lookup",
    "pytest_optcheck.golden.environment.x_torch_minor_key__mutmut_4": _LOCAL_LABEL,
    # -- engine: messages, outcome, bound, per_epoch (2026-12-04 runs) --
    "pytest_optcheck.engine.compare.x__reach_bad__mutmut_33": "where current never reached the target and the golden "
                                                              "did, c - g is +inf: above any allowance already "
                                                              "(Tolerance refuses an infinite rtol/atol)",
    # -- end of engine: messages, outcome, bound, per_epoch --
    # -- engine: stepwise, envelope, trajectory, thinning (2026-12-04 runs) --
    "pytest_optcheck.engine.thinning.x__aggregate__mutmut_3": "a Trajectory's series are float64 already, and so are "
                                                              "the bucket stats _merge passes",
    "pytest_optcheck.engine.thinning.x__aggregate__mutmut_5": "a Trajectory's series are float64 already, and so are "
                                                              "the bucket stats _merge passes",
    "pytest_optcheck.engine.thinning.x__merge__mutmut_23": "numpy's reshape reads any negative size as the one "
                                                           "unknown dimension: -2 is -1",
    "pytest_optcheck.engine.stepwise.x__outside__mutmut_37": "where a == 0 and b differs, abs_err / |a| is inf already; where both are 0, "
                                                      "`same` masks it",
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_112": "numpy's reshape reads any negative size as the one unknown dimension",
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_116": "numpy's reshape reads any negative size as the one unknown dimension",
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_84": _NEGATIVE,
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_66": "an equal maximum assigns the same value",
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_37": "b enters only b - a, a == b, isnan(b) and isfinite(b), where numpy promotes it to a's "
                                                         "float64",
    "pytest_optcheck.engine.stepwise.x_compare_tensors__mutmut_39": "b enters only b - a, a == b, isnan(b) and isfinite(b), where numpy promotes it to a's "
                                                         "float64",
    "pytest_optcheck.engine.envelope.x_round_up__mutmut_31": "the values are rounded to 3 significant digits "
                                                             "already: 2 more digits in the format strip the same "
                                                             "float noise",
    "pytest_optcheck.engine.envelope.x_running_max__mutmut_13": "deviations are >= 0: a zero padding never wins a "
                                                                "maximum over edge copies",
    "pytest_optcheck.engine.trajectory.x__encode_float__mutmut_11":
        "x is +-inf here (finite and NaN returned before): >= 0 splits them as > 0 does",
    "pytest_optcheck.engine.trajectory.x__encode_float__mutmut_12":
        "x is +-inf here (finite and NaN returned before): > 1 splits them as > 0 does",
    "pytest_optcheck.engine.trajectory.x__index_array__mutmut_11":
        "fill is always np.arange(rows), int64 already",
    "pytest_optcheck.engine.trajectory.x__index_array__mutmut_13":
        "fill is always np.arange(rows), int64 already",
    "pytest_optcheck.engine.trajectory.x_as_2d__mutmut_14":
        "numpy's reshape reads any negative size as the one unknown dimension: -2 is -1",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_23":
        "numpy's reshape reads any negative size as the one unknown dimension: -2 is -1",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_34":
        "numpy's reshape reads any negative size as the one unknown dimension: -2 is -1",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_9":
        "only picks the fast or the per-element path; both give the same float64 array (ragged rows: a numpy ValueError either way)",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_11":
        "only picks the fast or the per-element path; both give the same float64 array",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_12":
        "only picks the fast or the per-element path; both give the same float64 array (ragged rows: a numpy ValueError either way)",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_13":
        "only picks the fast or the per-element path; both give the same float64 array (ragged rows: a numpy ValueError either way)",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_40":
        "only picks the fast or the per-element path; both give the same float64 array",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_29":
        "dec() returns Python floats only: numpy makes them float64 without being told",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_31":
        "dec() returns Python floats only: numpy makes them float64 without being told",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_46":
        "dec() returns Python floats only: numpy makes them float64 without being told",
    "pytest_optcheck.engine.trajectory.x_decode_floats__mutmut_48":
        "dec() returns Python floats only: numpy makes them float64 without being told",
    "pytest_optcheck.engine.trajectory.xǁTrajectoryǁto_numpy__mutmut_13":
        "two Python ints: numpy makes them int64 without being told (Linux/macOS)",
    "pytest_optcheck.engine.trajectory.xǁTrajectoryǁto_numpy__mutmut_15":
        "two Python ints: numpy makes them int64 without being told (Linux/macOS)",
    # -- end of engine: stepwise, envelope, trajectory, thinning --
    # -- declare: catalog, signatures, problems, build (2026-12-04 runs) --
    **{f"pytest_optcheck.declare.build.x__same_call__mutmut_{i}":
       "key= only names the key in a SpecError, and neither call can fail: spec.model was parsed when the Spec "
       "was made, SEED_MODEL is valid" for i in (3, 6, 7, 11, 14, 15)},
    "pytest_optcheck.declare.build.x_derive_seed__mutmut_8": "a 9th little-endian byte lands in bits 64-71, "
                                                             "which the & (2**63 - 1) mask clears",
    "pytest_optcheck.declare.problems.x_blobs__mutmut_59": "labels come from torch.arange of ints: int64 already",
    "pytest_optcheck.declare.problems.x_sparse_linear__mutmut_44": "torch.randint(2, ...) is torch.randint(0, 2, ...): "
                                                                   "low defaults to 0, the same draws",
    "pytest_optcheck.declare.problems.x_sparse_linear__mutmut_77": "loss='mse' is Problem's default loss",
    "pytest_optcheck.declare.problems.x_sine__mutmut_41": "loss='mse' is Problem's default loss",
    "pytest_optcheck.declare.problems.x_quadratic__mutmut_30": "torch.normal(mean, std=1.0) draws what a std of "
                                                               "ones_like(mean) draws (the seed-formula test pins them)",
    "pytest_optcheck.declare.problems.x_quadratic__mutmut_42": "loss='mse' is Problem's default loss",
    "pytest_optcheck.declare.problems.x_quadratic__mutmut_43": "model=SEED_MODEL is Problem's default model",
    **{f"pytest_optcheck.declare.problems.x_rosenbrock__mutmut_{i}":
       "a, b and 0 are the same numbers in any float dtype, and cast() gives the problem's dtype" for i in (11, 13, 20, 23)},
    "pytest_optcheck.declare.problems.x_sparse_linear__mutmut_39": "an int64 sign * 2 - 1 times float32 magnitudes "
                                                                   "is the same float32 product",
    "pytest_optcheck.declare.catalog.x__import_dotted__mutmut_14": "importing a longer dotted name imports each parent "
        "package first and binds every submodule to its parent: walking attributes from a shorter prefix reaches "
        "the same object",
    **{f"pytest_optcheck.declare.catalog.x_resolve_problem__mutmut_{i}":
       "key= only names the key in a SpecError, and _split parsed the same value already: this parse cannot fail"
       for i in (28, 31, 32, 67, 70, 71)},
    "pytest_optcheck.declare.catalog.x_resolve_optimizer__mutmut_11": "with_sizes(None) is a copy with the same "
        "fields and no sizes: the builder it replaces",
    "pytest_optcheck.declare.catalog.x_resolve_scheduler__mutmut_12": "with_sizes(None) is a copy with the same "
        "fields and no sizes: the builder it replaces",
    "pytest_optcheck.declare.catalog.xǁBuilderǁ_fill__mutmut_2": "nested builders come from _nest without sizes: "
        "with_sizes(None) is a copy of the same builder",
    "pytest_optcheck.declare.catalog.xǁBuilderǁ__call____mutmut_16": "a builder is called with at most one lead "
        "value (the optimizer, or the parameters): lead[1:] and lead[2:] are both empty",
    "pytest_optcheck.declare.catalog.x_library_modules__mutmut_36": "a callable here is a function, a class or an "
        "instance: each has __module__ (on itself or on its type), so getattr's default is never used",
    # -- end of declare: catalog, signatures, problems, build --
    # -- run: train, conventions, describe, replicas, autocast (2026-12-04 runs) --
    "pytest_optcheck.run.autocast.xǁAutocastSeenǁ__init____mutmut_2": "_device_type starts as '' instead of None: "
    "note() reads it as `self._device_type or ...`, and both are falsy",
    # -- end of run: train, conventions, describe, replicas, autocast --
    # -- run/train.py (2026-12-04 runs) --
    **{f"pytest_optcheck.run.train.x_{name}": "warnings.filterwarnings compiles message= with re.IGNORECASE: the "
       "pattern in other letter case matches the same warnings"
       for name in ("_closure__mutmut_19", "_closure__mutmut_20", "lr_schedule__mutmut_26")},
    "pytest_optcheck.run.train.x__train__mutmut_62": "the batch order's device only decides where the index lives: "
    "inputs[index] takes the same rows with a CPU index (torch copies it to the inputs' device), so no value can change "
    "(run_epochs's own .to(device) is pinned by test_train_parts.py::test_the_batch_indices_are_on_the_datas_device)",
    # -- end of run/train.py --
    # -- run/record/recorder.py (2026-12-04 runs) --
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁ__init____mutmut_{i}": "_grad_seen's first value is never read: every _pre_step that records "
       "grad_norm sets it before _post_step or the closure reads it, and without grad_norm it is read only "
       "behind `self._want_grad and`" for i in (69, 70)},
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ__init____mutmut_73": "_entered is read only as `not self._entered`: None is falsy like False",
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁ_batch_numbers__mutmut_{i}": "a float mask of 0.0/1.0 (True stored as 1.0) selects in np.where "
       "what the bool mask selects" for i in (5, 7)},
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_epoch_series__mutmut_4": "Trajectory takes each per-epoch series as np.array(..., dtype=float64), "
                                 "which reads a None fill as NaN",
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁ_fused_skips__mutmut_{i}": "`found` is made from _found_inf one for one: the two lengths always "
       "match, so strict= changes nothing" for i in (7, 10, 11)},
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁ_group_row__mutmut_{i}": "only the fast path for rows of plain numbers: _snapshot_number returns a "
       "float or int unchanged, and refuses a bool either way" for i in (11, 12, 14)},
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_pre_step__mutmut_5": "without scaler= the found_inf list is never read: _step_series reads it only "
                             "when a scaler is set",
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_pre_step__mutmut_37": "gradients taken at the start of a closure step are overwritten by those taken "
                              "after the closure's first evaluation (or at _post_step when it never ran); without "
                              "grad_norm, _grad_seen stays False",
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_step_series__mutmut_9": "GroupRows gains one row per counted step (_new_row): it holds exactly `steps` "
                                "rows, so [:None] and [:steps] cut the same",
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_step_series__mutmut_26": "with no fused skip, series[name][[]] = nan writes nothing: the guard only "
                                 "saves the copies",
    "pytest_optcheck.run.record.recorder.xǁRecorderǁ_step_series__mutmut_28": "numpy stores None in a float64 array as NaN",
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁ_warn_unstepped__mutmut_{i}": "UserWarning is warnings.warn's default category (None or left out)"
       for i in (8, 11)},
    **{f"pytest_optcheck.run.record.recorder.xǁRecorderǁlog__mutmut_{i}": "only the fast path: _column looks the column up again and, with reduce=None, keeps "
       "its rule (or sets the default one)" for i in (15, 16)},
    # -- end of run/record/recorder.py --
    # -- run/record: recorder, series, norms, watch, world, hosts (2026-12-04 runs) --
    "pytest_optcheck.run.record.hosts.x_host_values__mutmut_14": "CUDA-only branch: tests/unit/run/test_record_sync.py::"
                                      "test_values_of_two_devices_are_read_per_device_in_their_places covers it on a GPU",
    "pytest_optcheck.run.record.hosts.x_host_values__mutmut_25": "torch.stack of one 0-d tensor is the same 1-element tensor as reshape(1)",
    "pytest_optcheck.run.record.hosts.x_host_values__mutmut_27": "torch.stack of one 0-d tensor is the same 1-element tensor as reshape(1)",
    "pytest_optcheck.run.record.hosts.x_host_values__mutmut_3": "np.empty's default dtype is float64",
    "pytest_optcheck.run.record.hosts.x_host_values__mutmut_5": "np.empty's default dtype is float64",
    "pytest_optcheck.run.record.hosts.x_scalars_to_host__mutmut_8": "torch.cat of one 1-d tensor is that tensor: the same values, one transfer",
    "pytest_optcheck.run.record.hosts.x_scalars_to_host__mutmut_10": "torch.cat of one 1-d tensor is that tensor: the same values, one transfer",
    "pytest_optcheck.run.record.hosts.x_stack_scalars__mutmut_4": "a failing reshape falls to the next try, which stacks the same values as 0-d tensors",
    "pytest_optcheck.run.record.hosts.x_stack_scalars__mutmut_5": "reshape(-2) fails; the next try stacks the same values as 0-d tensors",
    "pytest_optcheck.run.record.hosts.x_to_numpy__mutmut_7": "astype(None) is astype(float64)",
    "pytest_optcheck.run.record.hosts.x_to_numpy__mutmut_8": "copy=None is falsy, like False; every caller copies the result anyway",
    "pytest_optcheck.run.record.hosts.x_to_numpy__mutmut_10": "every caller copies the result (out[slots] = ..., np.concatenate): a copy here is invisible",
    "pytest_optcheck.run.record.hosts.x_to_numpy__mutmut_11": "every caller copies the result (out[slots] = ..., np.concatenate): a copy here is invisible",
    "pytest_optcheck.run.record.hosts.x_to_numpy__mutmut_13": "numpy 2 takes any negative size in reshape as the one unknown dimension, like -1",
    # -- end of run/record: recorder, series, norms, watch, world, hosts --
    # -- run/record parts (2026-12-04 runs) --
    "pytest_optcheck.run.record.watch.xǁUpdateWatchǁremove__mutmut_1":
        "active is read only as a truth value (`if self.active:`): None is falsy like False",
    "pytest_optcheck.run.record.series.xǁColumnǁadd__mutmut_14":
        "as_float of a Python float is that float: skipping the call for floats only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁadd__mutmut_25":
        "as_float of a Python float is that float: skipping the call for floats only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁadd__mutmut_22":
        "tensors is read only as a truth value (`if not tensors`): 1 after a tensor is truthy like the count",
    "pytest_optcheck.run.record.series.xǁColumnǁadd__mutmut_23":
        "tensors is read only as a truth value (`if not tensors`): -1 after a tensor is truthy like the count",
    "pytest_optcheck.run.record.series.xǁColumnǁadd__mutmut_24":
        "tensors is read only as a truth value (`if not tensors`): 2 after a tensor is truthy like the count",
    "pytest_optcheck.run.record.series.xǁColumnǁ__init____mutmut_7":
        "the tensor path over a block of floats makes the same block (no slots, stack_scalars([]) is None, the same floats): `if not tensors` only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_3":
        "the tensor path over a block of floats makes the same block (no slots, stack_scalars([]) is None, the same floats): `if not tensors` only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_12":
        "add() makes every value of a tensor-free block a Python float: np.array of floats is float64",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_14":
        "add() makes every value of a tensor-free block a Python float: np.array of floats is float64",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_21":
        "the list holds Python floats and math.nan only: np.array of it is float64",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_23":
        "the list holds Python floats and math.nan only: np.array of it is float64",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_30":
        "slots is a non-empty list of Python ints here (the block has a tensor): np.asarray makes int64",
    "pytest_optcheck.run.record.series.xǁColumnǁ_close_block__mutmut_32":
        "slots is a non-empty list of Python ints here (the block has a tensor): np.asarray makes int64",
    "pytest_optcheck.run.record.series.xǁColumnǁhost__mutmut_21":
        "steps are Python ints: int64 either way; with none, series() returns before indexing with it",
    "pytest_optcheck.run.record.series.xǁColumnǁhost__mutmut_23":
        "steps are Python ints: int64 either way; with none, series() returns before indexing with it",
    "pytest_optcheck.run.record.series.xǁColumnǁseries__mutmut_10":
        "the per-step loop gives a step with one value that value: the one-value-per-step shortcut only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁseries__mutmut_13":
        "the per-step loop gives a step with one value that value: the one-value-per-step shortcut only saves time",
    "pytest_optcheck.run.record.series.xǁColumnǁseries__mutmut_29":
        "every rule (mean, sum, first, last, min, max) of one value is that value: the shortcut only saves a call",
    "pytest_optcheck.run.record.series.xǁColumnǁseries__mutmut_31":
        "every rule (mean, sum, first, last, min, max) of one value is that value: the shortcut only saves a call",
    "pytest_optcheck.run.record.series.xǁGroupRowsǁarray__mutmut_3":
        "widths are Python ints (int64); an empty array is float64 but only summed (0.0 -> int 0) and compared",
    "pytest_optcheck.run.record.series.xǁGroupRowsǁarray__mutmut_5":
        "widths are Python ints (int64); an empty array is float64 but only summed (0.0 -> int 0) and compared",
    "pytest_optcheck.run.record.series.xǁGroupRowsǁarray__mutmut_13":
        "for ints and floats mixed, host_values gives the same float64 values as np.array: the shortcut only saves time",
    "pytest_optcheck.run.record.series.xǁGroupRowsǁarray__mutmut_25":
        "the masked fill gives rows of equal width the same array as the reshape: the shortcut only saves time",
    "pytest_optcheck.run.record.series.xǁGroupRowsǁarray__mutmut_26":
        "the masked fill gives rows of equal width the same array as the reshape: the shortcut only saves time",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_12":
        "torch.cat of one chunk is a copy of that chunk: the same values",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_14":
        "torch.cat of one chunk is a copy of that chunk: the same values",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_24":
        "astype(None) is astype(float64)",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_25":
        "copy=None or True only copies: the values read are the same (out[...] = values copies them)",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_27":
        "copy=None or True only copies: the values read are the same (out[...] = values copies them)",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_28":
        "copy=None or True only copies: the values read are the same (out[...] = values copies them)",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_17":
        "CUDA-only branch (a host chunk and a GPU chunk; CPU chunks of any dtype concatenate): tests/unit/run/test_record_series.py::test_vectors_recorded_on_a_gpu_after_a_read_join_the_host_ones covers it on a GPU",
    "pytest_optcheck.run.record.series.xǁVectorsǁhost__mutmut_18":
        "CUDA-only branch (a host chunk and a GPU chunk; CPU chunks of any dtype concatenate): tests/unit/run/test_record_series.py::test_vectors_recorded_on_a_gpu_after_a_read_join_the_host_ones covers it on a GPU",
    "pytest_optcheck.run.record.norms.x__dense__mutmut_2":
        "to_dense() of a strided tensor returns that same tensor",
    "pytest_optcheck.run.record.norms.xǁNormsǁ__init____mutmut_13":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁNormsǁ__init____mutmut_20":
        "MPS-only: _accumulator is float64 on every device but Apple's MPS, so both branches give float64 here and on CUDA",
    "pytest_optcheck.run.record.norms.xǁNormsǁ__init____mutmut_21":
        "MPS-only: _accumulator is float64 on every device but Apple's MPS, so both branches give float64 here and on CUDA",
    "pytest_optcheck.run.record.norms.xǁNormsǁ__init____mutmut_23":
        "MPS-only: _accumulator is float64 on every device but Apple's MPS, so both branches give float64 here and on CUDA",
    "pytest_optcheck.run.record.norms.xǁNormsǁ__init____mutmut_24":
        "MPS-only: _accumulator is float64 on every device but Apple's MPS, so both branches give float64 here and on CUDA",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁ__init____mutmut_8":
        "grad_norm is set by take_grads before every after_step (the recorder's order); out of order, None fails the assert and '' fails torch.stack: an error either way",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁafter_step__mutmut_23":
        "grad_norm is set by take_grads before every after_step (the recorder's order); out of order, None fails the assert and '' fails torch.stack: an error either way",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁsmall_count__mutmut_3":
        "a 0-d float32 zero: torch.stack promotes it to the other rows' float64, and 0 is 0",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁsmall_count__mutmut_6":
        "a 0-d float32 zero: torch.stack promotes it to the other rows' float64, and 0 is 0",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁsmall_count__mutmut_4":
        "without parameters self.device is the CPU, torch's default device",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁsmall_count__mutmut_7":
        "without parameters self.device is the CPU, torch's default device",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁsmall_count__mutmut_9":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_3":
        "a 0-d float32 zero: torch.stack promotes it to the other rows' float64, and 0 is 0",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_6":
        "a 0-d float32 zero: torch.stack promotes it to the other rows' float64, and 0 is 0",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_4":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_7":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_19":
        "the norm of one non-negative number is that number",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_22":
        "the norm of one non-negative number is that number",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_25":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU (on one device the norm of one norm is that norm)",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_26":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU (on one device the norm of one norm is that norm)",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_27":
        "MPS-only: _accumulator is float64 on every device but Apple's MPS, so both branches give float64 here and on CUDA (the per-device norms are computed in self.acc already)",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_29":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_30":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_31":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_32":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_33":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_ForeachNormsǁtotal_norm__mutmut_34":
        "CUDA-only: the several-devices path; tests/unit/run/test_record_norms.py::test_parameters_on_two_devices_make_one_norm_on_the_first covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_21":
        "the 'after' part copied though no series needs it: the same values, one copy more",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_46":
        "they differ only for a row of 0 bytes, where HISTORY_BYTES // 1 and // 2 both exceed HISTORY_ROWS",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_35":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_38":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_62":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.norms.xǁ_HistoryNormsǁ__init____mutmut_65":
        "CUDA-only: on one CPU device the same; tests/unit/run/test_record_norms.py::test_on_a_gpu_the_norms_are_reduced_where_the_parameters_are covers it on a GPU",
    "pytest_optcheck.run.record.world.x__local_grad__mutmut_9":
        "DTensor.redistribute(None, ...) keeps the tensor's own mesh, and a gradient lives on its parameter's mesh",
    "pytest_optcheck.run.record.world.x__locals__mutmut_7":
        "_local_grad of a plain tensor is its .grad (is_dtensor(grad) is False): the same gradient",
    "pytest_optcheck.run.record.world.xǁRanksǁglobalise__mutmut_43":
        "the logged series are Column.series' float64 arrays: np.asarray keeps float64",
    "pytest_optcheck.run.record.world.xǁRanksǁglobalise__mutmut_45":
        "the logged series are Column.series' float64 arrays: np.asarray keeps float64",
    # -- end of run/record parts --
    # -- checks: sensitivity, differential/* (2026-12-04 runs) --
    "pytest_optcheck.checks.differential.states.x_record_run__mutmut_15":
        "train() reads `device` only to build when `built` is None, and record_run always passes `built`",
    "pytest_optcheck.checks.differential.states.x_record_run__mutmut_19":
        "train() reads `device` only to build when `built` is None, and record_run always passes `built`",
    "pytest_optcheck.checks.sensitivity.x_probe__mutmut_15":
        "train() reads `device` only to build when `built` is None, and probe always passes `built`",
    "pytest_optcheck.checks.sensitivity.x_probe__mutmut_19":
        "train() reads `device` only to build when `built` is None, and probe always passes `built`",
    # -- end of checks: sensitivity, differential/* --
    # -- differential processes (2026-12-04 runs) --
    "pytest_optcheck.checks.differential.processes.x__failure_text__mutmut_21": _CODEC,
    "pytest_optcheck.checks.differential.processes.x__worker__mutmut_96": _CODEC,
    "pytest_optcheck.checks.differential.processes.x__wait__mutmut_20": "the deadline is monotonic() + timeout, "
        "a float: > and >= differ only when a later monotonic() returns that very float, where waiting one more "
        "poll (50 ms) or not is all that changes",
    "pytest_optcheck.checks.differential.processes.x_free_port__mutmut_4": "socket.socket's type defaults to "
        "SOCK_STREAM",
    "pytest_optcheck.checks.differential.processes.x_function_reference__mutmut_18": "a run without __qualname__ "
        "is looked up as '' or as 'XXXX': the module has neither attribute holding it, so both are refused",
    "pytest_optcheck.checks.differential.processes.x_function_reference__mutmut_22": "a run without __module__ is "
        "refused by `module is None` whichever module name is looked up",
    "pytest_optcheck.checks.differential.processes.x_rank_run__mutmut_1": "rank_run's strategy default is only "
        "compared with 'fsdp': any other string takes the DDP branch, as 'ddp' does",
    "pytest_optcheck.checks.differential.processes.x_rank_run__mutmut_2": "rank_run's strategy default is only "
        "compared with 'fsdp': any other string takes the DDP branch, as 'ddp' does",
    "pytest_optcheck.checks.differential.processes.x_rank_run__mutmut_55": "train() reads device only to build "
        "when it is not given a Built (run/train.py _train); rank_run gives it one",
    "pytest_optcheck.checks.differential.processes.x_rank_run__mutmut_59": "train() reads device only to build "
        "when it is not given a Built (run/train.py _train); rank_run gives it one",
    "pytest_optcheck.checks.differential.processes.x_shard_layers__mutmut_13": "parameters(recurse=None): "
        "nn.Module reads recurse only as a truth value, and None is falsy like False",
    "pytest_optcheck.checks.differential.distributed.x_check_distributed__mutmut_32": "record_run passes device to "
        "train(), which reads it only to build when not given a Built; check_distributed gives it one",
    "pytest_optcheck.checks.differential.distributed.x_check_distributed__mutmut_34": "without built=, record_run "
        "builds the spec again: the same seeded model, optimizer and data (build is deterministic), only slower",
    "pytest_optcheck.checks.differential.distributed.x_check_distributed__mutmut_38": "without built=, record_run "
        "builds the spec again: the same seeded model, optimizer and data (build is deterministic), only slower",
    **{f"pytest_optcheck.checks.differential.distributed.x_check_distributed__mutmut_{i}": "FSDP_DEFAULTS is "
       "DISTRIBUTED_DEFAULTS (the same object: measured, the same defaults hold), so either branch picks it"
       for i in range(40, 45)},
    # -- end of differential processes --
    # -- report: index, picture, plotting, obtained; cli (2026-12-04 runs) --
    "pytest_optcheck.report.obtained.x_accept__mutmut_81": _CODEC,
    "pytest_optcheck.report.obtained.x_results_of__mutmut_10": _CODEC,
    "pytest_optcheck.report.index.x__e__mutmut_4": "quote=True is html.escape's default",
    "pytest_optcheck.report.index.x__url__mutmut_5": "letters are always safe in urllib.parse.quote: 'XX' added to safe changes nothing",
    "pytest_optcheck.report.index.x_render_index__mutmut_38": "_list_section only tests the note's truth: None and '' both print no note",
    "pytest_optcheck.report.index.x_render_index__mutmut_48": "_list_section only tests the note's truth: None and '' both print no note",
    "pytest_optcheck.report.index.x_write_index__mutmut_8": _NAN,
    "pytest_optcheck.report.index.x_write_index__mutmut_12": _NAN,
    "pytest_optcheck.report.index.x_write_index__mutmut_16": _NAN,
    # -- end of report: index, picture, plotting, obtained; cli --
    # -- report/picture+plotting (2026-12-04 runs) --
    **{f"pytest_optcheck.report.picture.x__clear__mutmut_{i}": "re-setting a linear y scale only costs time: the "
       "locator _label sets and the formatter it resets are what a new Axes has (pixel test: test_picture_pixels.py)"
       for i in (3, 4)},
    "pytest_optcheck.report.picture.x__clear__mutmut_22": "Text.set_text(None) writes '', like set_title('')",
    "pytest_optcheck.report.picture.x__clear__mutmut_28": _TITLE_LOC,
    "pytest_optcheck.report.picture.x__label__mutmut_13": _TITLE_LOC,
    "pytest_optcheck.report.picture.x__draw_noise_band__mutmut_55": "on a log axis every finite golden value is > 0 "
        "(use_log_scale), so >= 0 picks the same values",
    "pytest_optcheck.report.picture.x__draw_relative_error__mutmut_9": "anything=None is falsy like False, and only "
        "its truth is read",
    "pytest_optcheck.report.picture.x__draw_relative_error__mutmut_106": "set_xlim(None, r) keeps the left limit, "
        "which is 0 there: a new Axes' (0, 1) or _clear's, and nothing was drawn on the panel",
    "pytest_optcheck.report.picture.x__mark_first_failure__mutmut_73": _COLOR_CASE,
    "pytest_optcheck.report.picture.x__mark_first_failure__mutmut_77": _COLOR_CASE,
    "pytest_optcheck.report.picture.x__new_grid__mutmut_59": "squeeze=None is falsy, like False: subplots returns the "
        "2-D array either way",
    "pytest_optcheck.report.picture.x__skipped_steps__mutmut_16": "numpy 2 takes any negative size in reshape as the "
        "one unknown dimension, like -1",
    **{f"pytest_optcheck.report.plotting.x_drawn_points__mutmut_{i}": "keep as float zeros: the 1.0s set are what "
       "flatnonzero finds, the same indices as of a boolean mask" for i in (28, 30)},
    **{f"pytest_optcheck.report.plotting.x_{f}__mutmut_{i}": "squeeze=None is falsy, like False: subplots returns "
       "the 2-D array either way" for f, i in (("plot_goldens", 16), ("plot_trajectory", 19))},
    **{f"pytest_optcheck.report.plotting.x_{f}__mutmut_{i}": "subplots' ncols defaults to 1"
       for f, i in (("plot_goldens", 18), ("plot_trajectory", 21))},
    "pytest_optcheck.report.plotting.x_plot_goldens__mutmut_41": "numpy 2 takes any negative size in reshape as the "
        "one unknown dimension, like -1",
    "pytest_optcheck.report.plotting.x_save_figure__mutmut_15": "savefig lower-cases the format: 'PNG' is 'png'",
    **{f"pytest_optcheck.report.plotting.x__short_call__mutmut_{i}": "most_common(n)[0] is the same pair for any n "
       "or None: nlargest is sorted(..., reverse=True)[:n], ties in first-seen order either way" for i in (23, 25)},
    **{f"pytest_optcheck.report.plotting.x_plot_goldens__mutmut_{i}": "grid(None or no flag, alpha=...): matplotlib "
       "turns the grid on when line properties are given" for i in (101, 103)},
    # -- end of report/picture+plotting --
    # -- plugin glue, handle, own_loop (2026-12-04 runs) --
    "pytest_optcheck.plugin.options.x_add_options__mutmut_30": "pytest derives dest from the flag as Option.dest does (--optcheck-device -> "
                                        "optcheck_device) for every flag; test_options pins the parsed names",
    "pytest_optcheck.plugin.options.x_add_options__mutmut_35": "pytest derives dest from the flag as Option.dest does, for every flag",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_12": "a flagless option's dest is '', a key no config.option has: get('') is None",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_16": "an ini-less option's ini is None, a key no ini mapping has: get(None) is None",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_24": "the tolerances (the only two-layer option) have a flag: `or ''` is never taken",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_38": "a given value implies a flag: `or ''` is never taken in that branch",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_47": "the last branch parses an unset value (None/False), which no parser refuses: "
                                          "`where` is never read there",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_50": "the last branch parses an unset value, which no parser refuses: `where` unread",
    "pytest_optcheck.plugin.options.x_build_settings__mutmut_51": "the last branch parses an unset value, which no parser refuses: `where` unread",
    "pytest_optcheck.plugin.failures.x_clean_failure__mutmut_25": "format_list's entries end in their source "
        "line and one newline: rstrip() and rstrip('\\n') cut the same",
    "pytest_optcheck.plugin.gating.x_is_marked__mutmut_14": "a parametrize mark without argvalues fails in pytest's "
        "own parametrize first (Gating is trylast): the default is never read",
    "pytest_optcheck.plugin.gating.x_is_marked__mutmut_16": "a parametrize mark without argvalues fails in pytest's "
        "own parametrize first (Gating is trylast): the default is never read",
    "pytest_optcheck.plugin.pruning.x_is_full_run__mutmut_26": "False or None as the default of an option whose plugin is off "
        "(-p no:cacheprovider / no:stepwise): both falsy",
    "pytest_optcheck.plugin.pruning.x_is_full_run__mutmut_35": "False or None as the default of an option whose plugin is off "
        "(-p no:cacheprovider / no:stepwise): both falsy",
    "pytest_optcheck.plugin.pruning.x_is_full_run__mutmut_44": "False or None as the default of an option whose plugin is off "
        "(-p no:cacheprovider / no:stepwise): both falsy",
    "pytest_optcheck.plugin.pruning.xǁPruningǁfinish__mutmut_43": "missing_ok only matters when another process deletes the orphan "
        "between listing and unlinking; within one session every listed file exists",
    "pytest_optcheck.plugin.pruning.xǁPruningǁfinish__mutmut_44": "missing_ok only matters when another process deletes the orphan "
        "between listing and unlinking; within one session every listed file exists",
    "pytest_optcheck.plugin.snapshot.xǁTrajectorySnapshotǁ__eq____mutmut_11": "the check's own tolerance layer: "
        "resolve_tolerances skips a None layer as it skips an empty one",
    "pytest_optcheck.plugin.snapshot.xǁTrajectorySnapshotǁ__eq____mutmut_12": "declarative=None: read only as a "
        "truth value (`marked or declarative`, `declarative and ...`), falsy like False",
    # -- end of plugin glue, handle, own_loop --
    # -- integrations (2026-12-04 runs) --
    **{f"pytest_optcheck.integrations.base.xǁFrameworkRecordingǁtrajectory__mutmut_{i}":
       "self.losses holds Python floats only (float() in stepped and set_last_loss): numpy makes them float64 "
       "unasked" for i in (22, 24)},
    **{f"pytest_optcheck.integrations.base.xǁLightningRecordingCallbackǁ__init____mutmut_{i}":
       "the sum's first value: on_train_start sets it to 0.0 before any batch event can read it "
       "(on_train_batch_end requires a started recording first)" for i in (6, 7)},
    **{f"pytest_optcheck.integrations.hf.xǁOptcheckCallbackǁ__init____mutmut_{i}":
       "a counter's first value: on_train_begin sets _epoch, and on_epoch_begin _batch, before any event "
       "reads them (the Trainer calls both before the first step)" for i in (6, 7, 8, 9, 10)},
    "pytest_optcheck.integrations.hf.xǁOptcheckCallbackǁ__init____mutmut_11": "None is falsy, like False",
    "pytest_optcheck.integrations.hf.xǁOptcheckCallbackǁon_log__mutmut_9": "None is falsy, like False",
    "pytest_optcheck.integrations.hf.xǁOptcheckCallbackǁon_train_begin__mutmut_39":
        "on_epoch_begin sets _batch = 0 before any step event reads it",
    "pytest_optcheck.integrations.hf.xǁOptcheckCallbackǁon_train_begin__mutmut_40":
        "a loss logged before the new recording's first step finds no step to set (set_last_loss ignores it), "
        "and that first step sets _awaiting_loss itself",
    # -- end of integrations --
    # -- run/replicas + cli (2026-12-04 runs) --
    "pytest_optcheck.run.replicas.x__stacked__mutmut_64": "the step's value is read only by a plateau scheduler "
        "(ReduceLROnPlateau), which why_not_stacked sends to the sequential path: 0.0 or 1.0, nothing reads it",
    "pytest_optcheck.run.replicas.x__stacked__mutmut_68": "run_epochs moves the host-drawn batch order to this "
        "device; .to(None) leaves it on the host, and host indices pick the same rows of the inputs (CPU here)",
    "pytest_optcheck.cli.x_load__mutmut_19": _CODEC,
    "pytest_optcheck.cli.x_load__mutmut_23": "only isinstance(data, dict) reads it: None and '' both hand the text "
        "to loads(), which words the JSON error",
    "pytest_optcheck.cli.x__load_npz__mutmut_2": "np.load's allow_pickle defaults to False, and None is as falsy: "
        "pickles are refused either way (test_an_unreadable_npz_is_refused)",
    "pytest_optcheck.cli.x__load_npz__mutmut_4": "np.load's allow_pickle defaults to False: pickles are refused "
        "either way (test_an_unreadable_npz_is_refused)",
    "pytest_optcheck.cli.x__passed_lines__mutmut_5": "the default is the width only when there is no series, and "
        "then no row is printed to pad",
    "pytest_optcheck.cli.x__passed_lines__mutmut_8": "the default is the width only when there is no series, and "
        "then no row is printed to pad",
    "pytest_optcheck.cli.x_cmd_diff__mutmut_40": "judge reads the current spec only in spec_changes, which "
        "compares nothing when a spec is None, as when both are equal: the numbers are compared either way",
    # -- end of run/replicas + cli --
    # -- plugin/checking + ranks (2026-12-04 runs) --
    "pytest_optcheck.plugin.checking.xǁCheckingǁfinish__mutmut_30": "without a report folder the result stays "
        "unset, and add_outcome keeps a result only when it is truthy: '' and None both leave it out",
    "pytest_optcheck.plugin.checking.xǁTestChecksǁ_test_line__mutmut_5": "frames 1 and 2 up are _keep and its "
        "caller (check/report), both in plugin/checking.py, never the test's file: the search finds the same frame",
    "pytest_optcheck.plugin.checking.xǁTestChecksǁcheck__mutmut_28": "a declarative check's trajectory comes from "
        "train(), which sets meta['run']: golden_configuration returns before it reads `declarative`",
    "pytest_optcheck.plugin.checking.xǁTestChecksǁfailures__mutmut_3": "outcomes and lines are appended "
        "together, only in _keep: always the same length, so zip's strict never raises",
    "pytest_optcheck.plugin.checking.xǁTestChecksǁfailures__mutmut_6": "outcomes and lines are appended "
        "together, only in _keep: always the same length, so zip's strict never raises",
    "pytest_optcheck.plugin.checking.xǁTestChecksǁfailures__mutmut_7": "outcomes and lines are appended "
        "together, only in _keep: always the same length, so zip's strict never raises",
    "pytest_optcheck.plugin.ranks.x_launched_rank__mutmut_8": "int('XX1XX') raises the ValueError the function "
        "catches, answering 0 as for WORLD_SIZE=1: an unset variable reads the same",
    "pytest_optcheck.plugin.ranks.x_launched_rank__mutmut_18": "int('XX0XX') raises the ValueError the function "
        "catches, answering 0 as RANK=0 does: an unset RANK reads the same",
    "pytest_optcheck.plugin.ranks.x_launched__mutmut_8": "int('XX1XX') raises the ValueError the function catches, "
        "answering False as WORLD_SIZE=1 does: an unset variable reads the same",
    "pytest_optcheck.plugin.ranks.x_judged__mutmut_34": "the ranks above 0 tell only 'error' apart: any other kind "
        "is rank 0's verdict, whatever its tag",
    "pytest_optcheck.plugin.ranks.x_judged__mutmut_35": "the ranks above 0 tell only 'error' apart: any other kind "
        "is rank 0's verdict, whatever its tag",
    # -- end of plugin/checking + ranks --
    "pytest_optcheck.errors.x_suggest__mutmut_13": "0.6 is difflib.get_close_matches' own default cutoff",
}

#: Mutants mutmut cannot switch on, checked by hand instead and counted as killed: the
#: validators ``_choice(INTERVALS)``, ``_int(1)``... are closures made when spec.py is
#: imported, before mutmut activates a mutant. ``mutmut apply NAME`` in the --keep folder
#: then pytest tests/unit/declare/test_spec.py tests/unit/declare/test_spec_validation.py: each one fails (2026-11-25).
KILLED_BY_HAND: set[str] = {_S + f"x__choice__mutmut_{i}" for i in range(1, 11)} | {
    _S + f"x__int__mutmut_{i}" for i in range(1, 6)} | {
    # golden/files.py's encoding=None mutants (the locale's encoding): killed by
    # tests/unit/golden/test_files.py::test_goldens_are_utf_8_whatever_the_locale, which runs
    # under an ASCII locale in a subprocess, where mutmut cannot switch a mutant on; applied by
    # hand (sed on files.py, then that test) each one fails it (2026-12-04).
    _FI + "x_read_text__mutmut_1", _FI + "x_write_atomic__mutmut_24", _FI + "x_write_atomic__mutmut_28"} | {
    # plugin/gating.py: skipping the *unmarked* tests skips the outer session's own tests too (it
    # runs the mutated plugin), and mutmut counts a skip as a pass; the marked guard test
    # tests/e2e/test_gating.py::test_this_marked_test_runs_only_with_the_flag then runs and fails
    # (applied by hand: 1 failed, 7 skipped; 2026-12-04). mutmut never picks it: it calls no hook.
    "pytest_optcheck.plugin.gating.xǁGatingǁpytest_collection_modifyitems__mutmut_4"} | {
    # plugin/__init__.py: the controller's XdistMerge given no results / no pruning. Only an -n
    # session reaches it, whose workers are fresh processes that cannot import mutmut's copy;
    # applied by hand (sed), tests/e2e/test_plugin_xdist_session.py fails with each (2026-12-04).
    "pytest_optcheck.plugin.x_pytest_configure__mutmut_58", "pytest_optcheck.plugin.x_pytest_configure__mutmut_59"}

#: mutmut's exit-code statuses that count as killed.
KILLED = {"killed", "timeout", "caught by type check", "segfault", "killed by hand"}


def scratch_copy(target: Path, modules: list[str]) -> None:
    """The package, pyproject.toml and the modules' unit tests in ``target``."""
    shutil.copytree(REPO / PACKAGE, target / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", ".gitattributes"):  # a golden-format test reads .gitattributes
        shutil.copy2(REPO / name, target / name)
    tests = sorted({t for m in modules for t in MODULES[m]})
    (target / "tests").mkdir()
    for test in tests:
        (target / test).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / test, target / test)
    for folder in [target / "tests", *(d for d in (target / "tests").rglob("*") if d.is_dir())]:
        (folder / "__init__.py").touch()  # tests/ is a package (tests/unit/<layer>/, tests/e2e/)
        shared = REPO / folder.relative_to(target) / "conftest.py"
        if folder.relative_to(target).parts[:2] == ("tests", "unit") and shared.is_file():
            shutil.copy2(shared, folder / "conftest.py")  # a layer's fixtures (tests/unit/declare/conftest.py)
    # Not the suite's conftest: its torch warm-up starts thread pools that hang in the
    # processes mutmut forks, and these unit tests need neither it nor pytester.
    (target / "tests" / "conftest.py").write_text('"""Mutation runs: no torch warm-up."""\n', encoding="utf-8")
    selection = "\n    ".join(tests)
    only = "\n    ".join(f"{PACKAGE}/{m}" for m in modules)
    (target / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths = {PACKAGE}\n"
        "also_copy = .gitattributes\n"
        f"only_mutate =\n    {only}\n"
        f"pytest_add_cli_args_test_selection =\n    {selection}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -p\n    no:xdist\n    -p\n    no:randomly\n"
        "use_git_change_detection = false\n",
        encoding="utf-8",
    )


def mutmut(target: Path, *args: str, capture: bool = True, timeout: float | None = None) -> str:
    """mutmut's output (captured), or "" when not captured; with ``timeout``, "" if it ran
    out of time (it is stopped; what it measured so far stays on disk for ``results``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # mutmut puts mutants/ first itself
    # One intra-op thread: torch's CPU thread pool can deadlock in mutmut's forked workers, and
    # mutmut counts the hang as a "timeout" kill (2026-12-04: with it, 17 survivors of
    # run/autocast.py hid behind ~93 s timeouts; without it, none and the run took 77 s).
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "mutmut", *args]
    if timeout is not None:  # its own process group: mutmut's forked workers stop with it
        process = subprocess.Popen(command, cwd=target, env=env, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            return ""
        return "done"
    done = subprocess.run(command, cwd=target, env=env, text=True, capture_output=capture, check=False)
    if done.returncode != 0 and capture:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"mutmut {' '.join(args)} failed with exit code {done.returncode}")
    return done.stdout if capture else "done"


DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
out = {}
for name in json.loads(sys.stdin.read()):
    lines = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
    out[name] = [x for x in lines if x[:1] in "-+" and x[:3] not in ("---", "+++")]
print(json.dumps(out))
"""


def survivor_diffs(target: Path, names: list[str]) -> dict[str, list[str]]:
    """Each survivor's changed lines, from one process (``mutmut show`` per mutant is slow)."""
    import json

    done = subprocess.run([sys.executable, "-c", DIFFS], cwd=target, input=json.dumps(names), text=True,
                          capture_output=True, check=True)
    return json.loads(done.stdout)


def _category(mutant: str, status: str) -> str:
    """equivalent, killed, unchecked (the run stopped first) or survived ("no tests" too)."""
    if mutant in EQUIVALENT:
        return "equivalent"
    if status in KILLED:
        return "killed"
    return "unchecked" if status == "not checked" else "survived"


def module_of(mutant: str) -> str:
    """``pytest_optcheck.engine.compare.x_f__mutmut_3`` -> ``engine/compare.py`` (and a package's
    ``pytest_optcheck.plugin.x_f__mutmut_3`` -> ``plugin/__init__.py``)."""
    # ".x_" / ".xǁ" start the mangled function name (not ".x" alone: plugin.xdist starts with it)
    dotted = re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0] if re.search(r"\.x[_ǁ]", mutant) else mutant.rsplit(".", 1)[0]
    path = dotted.removeprefix(PACKAGE).removeprefix(".").replace(".", "/")
    if (REPO / PACKAGE / path).is_dir():  # a package's own module: pytest_optcheck.plugin.x_f is in plugin/__init__.py
        return f"{path}/__init__.py".removeprefix("/")
    return path + ".py"


def has_logic(path: Path) -> bool:
    """Whether a module defines a function or a class (a package's docstring-only or
    re-exporting ``__init__.py`` does not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for node in ast.walk(tree))


def changed_modules(base: str) -> tuple[list[str], list[str]] | None:
    """(modules to mutate, changed modules with logic that nothing maps) since ``base``;
    None when git cannot tell (no such commit: a shallow clone, the first commit)."""
    done = subprocess.run(["git", "diff", "--name-only", base, "--", PACKAGE], cwd=REPO, text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        return None
    names = [line.removeprefix(PACKAGE + "/") for line in done.stdout.splitlines() if line.endswith(".py")]
    present = [n for n in names if (REPO / PACKAGE / n).is_file()]  # a deleted module has nothing to mutate
    unmapped = [n for n in present if n not in MODULES and n not in NOT_MUTATED and has_logic(REPO / PACKAGE / n)]
    return [n for n in present if n in MODULES], unmapped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: {', '.join(DEFAULT)}; any of {', '.join(MODULES)}")
    parser.add_argument("--diff", action="store_true", help="print each survivor's diff")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--changed", metavar="BASE", help="mutate the modules changed since the commit BASE (CI)")
    parser.add_argument("--timeout", type=float, default=None, help="stop mutmut after this many seconds")
    parser.add_argument("--report-only", action="store_true",
                        help="print the scores but exit 0 below 90%% (an unmapped changed module still fails)")
    args = parser.parse_args(argv)
    if args.changed:
        found = changed_modules(args.changed)
        if found is None:
            print(f"mutation: git cannot diff against {args.changed!r} (shallow clone?): nothing mutated")
            return 0
        modules, unmapped = found
        if unmapped:
            print("mutation: changed modules with logic that benchmarks/mutation.py does not know: "
                  + ", ".join(unmapped) + ". Add each to MODULES with the unit tests that guard it, or to "
                  "NOT_MUTATED with the reason.")
            return 1
        if not modules:
            print(f"mutation: no mutated module changed since {args.changed}")
            return 0
        print(f"mutation: changed since {args.changed}: {', '.join(modules)}", flush=True)
    else:
        modules = args.modules or DEFAULT
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")

    with tempfile.TemporaryDirectory(prefix="optcheck-mutation-") as tmp:
        target = args.keep or Path(tmp)
        if target.exists() and args.keep:
            shutil.rmtree(target)
        target.mkdir(parents=True, exist_ok=True)
        scratch_copy(target, modules)
        start = time.perf_counter()
        finished = mutmut(target, "run", "--max-children", "1", capture=False, timeout=args.timeout)
        elapsed = time.perf_counter() - start
        if not finished:
            print(f"\nmutation: stopped after {elapsed:.0f} s (--timeout): the scores below count only the "
                  "mutants tested by then; run it without --timeout for the whole score")
        try:
            lines = mutmut(target, "results", "--all", "true").splitlines()
        except SystemExit as error:
            if finished:
                raise
            # Stopped mid-write (a mutant's stats file half written): nothing to score this time.
            print(f"mutation: {error}; stopped by --timeout while mutmut was writing, so no scores this time")
            return 0  # a bounded run is reported, not failed
        status = dict(re.match(r"\s*(\S+): (.+)$", line).groups() for line in lines if ": " in line)
        status.update({m: "killed by hand" for m in KILLED_BY_HAND if m in status})
        survivors = sorted(m for m, s in status.items() if _category(m, s) == "survived")
        diffs = survivor_diffs(target, survivors) if args.diff and survivors else {}

    print(f"\nmutmut over {len(modules)} module(s) in {elapsed:.0f} s\n")
    print(f"{'module':<22} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>7}")
    worst = 100.0
    untested: list[str] = []
    for module in modules:
        mine = {m: s for m, s in status.items() if module_of(m) == module}
        counts = Counter(_category(m, s) for m, s in mine.items())
        scored = counts["killed"] + counts["survived"]
        score = f"{100.0 * counts['killed'] / scored:>6.1f}%" if scored else "    n/a"
        if scored:
            worst = min(worst, 100.0 * counts["killed"] / scored)
        elif finished and counts["unchecked"]:
            untested.append(module)
        unchecked = f"  ({counts['unchecked']} not checked: stopped by --timeout)" if counts["unchecked"] else ""
        print(f"{module:<22} {len(mine):>7} {counts['killed']:>7} {counts['equivalent']:>7} "
              f"{counts['survived']:>8} {score}{unchecked}")
    excluded = sorted(m for m in EQUIVALENT if m in status)
    if excluded:
        print(f"\nequivalent, left out of the score ({len(excluded)}):")
        for m in excluded:
            print(f"  {m}: {EQUIVALENT[m]}")
    if survivors:
        print("\nsurviving mutants (mutmut show NAME in the --keep folder prints one):")
        for m in survivors:
            print(f"  {m}: {status[m]}")
            for line in diffs.get(m, []):
                print(f"      {line.strip()}")
    if untested:  # mutmut ran to the end and tested nothing: its tests failed on the unmutated code
        print(f"\nmutation: no mutant of {', '.join(untested)} was tested: mutmut stops when the mapped tests "
              "fail on the unmutated code in its scratch copy (their output is above)")
        worst = 0.0
    return 0 if worst >= 90.0 or args.report_only else 1


if __name__ == "__main__":
    raise SystemExit(main())
