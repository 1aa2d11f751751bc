"""The project's own log lines reach the Prefect UI beside the run logger's."""

from __future__ import annotations

import logging

import pytest
from prefect import flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


@flow(name="log-probe")
def _log_probe() -> str:
    logging.getLogger("videomdm.storage.lake").warning("probe line from the project")
    from prefect.runtime import flow_run

    return str(flow_run.id)


def test_project_loggers_reach_the_flow_run_logs():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    run_id = _log_probe()
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    found = [lg for lg in logs if lg.message == "probe line from the project"]
    assert found and found[0].name == "videomdm.storage.lake"
