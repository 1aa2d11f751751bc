"""prefect.yaml's deployments served from one process (``videomdm serve``).

``prefect deploy --all`` registers the same deployments for a work pool and a worker; serving
them needs neither: this process polls for their runs (scheduled, triggered by an event, or
started by hand) and runs each in a subprocess. Schedules and event triggers come from
prefect.yaml, so the file stays the one description of the deployments.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentTriggerTypes, TriggerTypes
from prefect.schedules import Cron, Schedule
from prefect.types.entrypoint import EntrypointType
from pydantic import TypeAdapter

from videomdm.errors import UserError

log = logging.getLogger(__name__)

_TRIGGERS: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)


def find_prefect_yaml(path: str | Path | None = None) -> Path:
    """``path``, else ./prefect.yaml, else the one at the project root beside the package."""
    here = Path(__file__).resolve().parents[2] / "prefect.yaml"
    for p in [Path(path)] if path else [Path("prefect.yaml"), here]:
        if p.is_file():
            return p
    raise UserError(f"no prefect.yaml at {path or f'./prefect.yaml or {here}'}")


def deployment_specs(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``deployments:`` entries of prefect.yaml."""
    return list(yaml.safe_load(find_prefect_yaml(path).read_text())["deployments"])


def load_entrypoint(entrypoint: str) -> Flow:
    """``videomdm/flows/x.py:fn`` imported as the module ``videomdm.flows.x`` (not by path, so
    the served flow is the installed package's, whatever the working directory)."""
    file, sep, attr = entrypoint.partition(":")
    if not sep or not file.endswith(".py"):
        raise UserError(f"entrypoint {entrypoint!r}: expected path/to/module.py:flow_function")
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    found = getattr(module, attr, None)
    if not isinstance(found, Flow):
        raise UserError(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return found


def parse_overrides(values: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``DEPLOYMENT.PARAM=VALUE`` strings (VALUE as JSON, else a string) by deployment."""
    out: dict[str, dict[str, Any]] = {}
    for v in values:
        key, sep, raw = v.partition("=")
        dep, dot, param = key.partition(".")
        if not sep or not dot or not dep or not param:
            raise UserError(f"{v!r}: expected DEPLOYMENT.PARAM=VALUE, e.g. retrain.steps=2")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(dep, {})[param] = value
    return out


def runner_deployments(
    path: str | Path | None = None,
    only: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RunnerDeployment]:
    """prefect.yaml's deployments (or the ``only`` ones) as deployments this process serves."""
    specs = {d["name"]: d for d in deployment_specs(path)}
    overrides = overrides or {}
    unknown = (set(only) | set(overrides)) - set(specs)
    if unknown:
        raise UserError(f"unknown deployment(s) {sorted(unknown)}; valid: {', '.join(specs)}")
    return [
        _runner_deployment(specs[name], overrides.get(name, {})) for name in (only or list(specs))
    ]


def _runner_deployment(d: Mapping[str, Any], override: Mapping[str, Any]) -> RunnerDeployment:
    flow = load_entrypoint(d["entrypoint"])
    params = {**(d.get("parameters") or {}), **override}
    valid = inspect.signature(flow.fn).parameters
    if bad := set(params) - set(valid):
        raise UserError(
            f"{d['name']}: unknown parameter(s) {sorted(bad)}; valid: {', '.join(valid)}"
        )
    triggers: list[DeploymentTriggerTypes | TriggerTypes] = [
        _TRIGGERS.validate_python({"name": f"{d['name']}__automation_{i}", **t})
        for i, t in enumerate(d.get("triggers") or [], start=1)
    ]
    return RunnerDeployment.from_flow(
        flow,
        name=d["name"],
        description=d.get("description"),
        parameters=params,
        schedules=[_schedule(s) for s in d.get("schedules") or []],
        triggers=triggers,
        tags=d.get("tags"),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def _schedule(s: Mapping[str, Any]) -> Schedule:
    if "cron" not in s:
        raise UserError(f"only cron schedules are served, got {dict(s)}")
    return Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))


def require_api_url() -> str:
    """The Prefect API served deployments register with; a temporary server would vanish (and
    its triggers with it) when this process stops, so one must be named."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise UserError(
            "serving needs a Prefect server: start one (`prefect server start`) and set "
            "PREFECT_API_URL, e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return url


def serve_deployments(
    path: str | Path | None = None,
    only: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    limit: int | None = None,
) -> None:
    """Serve the deployments until interrupted (Ctrl-C); their triggers are registered too."""
    from prefect import serve

    url = require_api_url()
    deployments = runner_deployments(path, only, overrides)
    names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
    log.info("serving %s against %s", names, url)
    serve(*deployments, limit=limit)
