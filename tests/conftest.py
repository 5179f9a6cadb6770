"""Settings for every test: hypothesis never times examples out (CI machines are shared and
slow), and under CI its examples are derandomised so a run can be repeated exactly.

Under CI (env CI set, not "false"/"0") every test dependency is installed, so
`pytest.importorskip` imports plainly: a missing torch, safetensors, gguf or tokenizers
fails its tests instead of skipping them (MM_TESTS_MAY_LACK="torch,gguf" names modules a CI
run deliberately goes without). CI's summary ends with the skips and their reasons."""
import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
MAY_LACK = {m.strip() for m in os.environ.get("MM_TESTS_MAY_LACK", "").split(",") if m.strip()}

settings.register_profile("mm", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          derandomize=IN_CI)
settings.load_profile("mm")

if IN_CI:
    _importorskip = pytest.importorskip

    def _import_in_ci(modname, minversion=None, reason=None, **kwargs):
        if modname.split(".")[0] not in MAY_LACK:
            importlib.import_module(modname)     # ModuleNotFoundError names what is missing
        return _importorskip(modname, minversion, reason, **kwargs)

    pytest.importorskip = _import_in_ci


def pytest_terminal_summary(terminalreporter):
    if not IN_CI:
        return
    skipped = terminalreporter.stats.get("skipped", [])
    terminalreporter.section(f"skips: {len(skipped)}")
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        terminalreporter.write_line(f"SKIPPED {report.nodeid}: {reason}")
