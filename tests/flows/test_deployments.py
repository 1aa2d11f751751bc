"""prefect.yaml: every deployment's entrypoint loads as a real flow with its parameters."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_point_at_real_flows():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"], "no deployments declared"
    for d in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        params = inspect.signature(flow.fn).parameters
        assert set(d.get("parameters", {})) <= set(params), d["name"]
        for s in d.get("schedules", []):
            assert s["cron"].count(" ") == 4


def _spec(name: str) -> dict:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return next(d for d in spec["deployments"] if d["name"] == name)


def test_triggers_are_valid_and_name_flow_parameters():
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    adapter = TypeAdapter(DeploymentTriggerTypes)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for d in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        for t in d.get("triggers", []):
            trigger = adapter.validate_python(t)
            assert set(trigger.parameters or {}) <= set(inspect.signature(flow.fn).parameters)
    assert {"ingest-collection", "extract-keypoints", "retrain"} <= {
        d["name"] for d in spec["deployments"]
    }


def test_retrain_trigger_takes_the_release_name_from_the_event():
    import jinja2
    from prefect.events import Event

    from videomdm.flows.release import RELEASE_CREATED, release_resource

    (trigger,) = _spec("retrain")["triggers"]
    assert trigger["expect"] == [RELEASE_CREATED]
    event = Event(event=RELEASE_CREATED, resource=release_resource("samples-1"))
    pattern = trigger["match"]["prefect.resource.id"]
    assert event.resource.id.startswith(pattern.rstrip("*"))
    rendered = {k: jinja2.Template(v).render(event=event) for k, v in trigger["parameters"].items()}
    assert rendered == {"release": "samples-1"}


def test_serve_builds_the_same_deployments_with_overrides():
    from videomdm.flows.deployments import parse_overrides, runner_deployments

    deps = {d.name: d for d in runner_deployments(ROOT / "prefect.yaml")}
    assert set(deps) == {
        d["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    }
    assert deps["retrain"].entrypoint == "videomdm.flows.train.retrain_flow"
    assert len(deps["retrain"].triggers) == 1 and len(deps["ingest-collection"].schedules) == 1
    (only,) = runner_deployments(
        ROOT / "prefect.yaml", ["retrain"], parse_overrides(["retrain.steps=2"])
    )
    assert only.parameters == {"preset": "small", "steps": 2}
    with pytest.raises(ValueError, match="valid: release, steps"):
        runner_deployments(ROOT / "prefect.yaml", ["retrain"], parse_overrides(["retrain.nope=1"]))
    with pytest.raises(ValueError, match="unknown deployment"):
        runner_deployments(ROOT / "prefect.yaml", ["nope"])
    with pytest.raises(ValueError, match="DEPLOYMENT.PARAM=VALUE"):
        parse_overrides(["steps=2"])
