"""`videomdm evaluate --ladder` as a real flow at a tiny budget: every rung stored as it
finishes, the report written, a second run reusing the stored rungs, names checked first."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from videomdm.flows.ladder import LadderRequest, ladder_flow
from videomdm.models.evaluation import ladder as ladder_mod

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _boom(*args, **kwargs):
    raise AssertionError("a stored rung was trained again")


def test_ladder_flow_stores_reports_and_resumes(tiny_ladder, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    base = dataclasses.replace(tiny_ladder, rungs=("R0", "R4"))
    req = LadderRequest(base, ("default", "vel350"), str(tmp_path))
    report = ladder_flow(req)
    assert [(r.recipe, r.rung) for r in report.rungs] == [
        ("default", "R0"),
        ("default", "R4"),
        ("vel350", "R0"),
        ("vel350", "R4"),
    ]
    assert (tmp_path / "vel350" / "R4.json").exists()
    numbers = json.loads((tmp_path / "ladder.json").read_text())
    assert [n["metrics"]["err_t2"] for n in numbers] == [r.metrics["err_t2"] for r in report.rungs]
    assert "| vel350 | R4 |" in (tmp_path / "ladder.md").read_text()
    assert (tmp_path / "ladder.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(ladder_mod, "run_rung", _boom)
    monkeypatch.setattr(ladder_mod, "build_protocol", _boom)
    again = ladder_flow(LadderRequest(base, ("vel350",), str(tmp_path)))
    assert again.rungs == report.rungs[2:]


def test_unknown_recipe_or_rung_is_one_user_error(assets, tmp_path):
    from typer.testing import CliRunner

    from videomdm.cli import app
    from videomdm.errors import UserError

    mocap = str(assets / "mocap")
    for args, words in (
        (["--recipe", "nope"], "unknown recipes ['nope']; known: default"),
        (["--rung", "R9"], "unknown rungs or lifters ['R9']"),
    ):
        r = CliRunner().invoke(
            app, ["evaluate", "--mocap", mocap, "--ladder", "-o", str(tmp_path), *args]
        )
        assert isinstance(r.exception, UserError) and words in str(r.exception), r.output
