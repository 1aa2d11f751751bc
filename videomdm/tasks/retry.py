"""When a task retries: only on failures that another try could fix."""

from __future__ import annotations

from typing import Any

from videomdm.errors import user_error_in


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """A task's ``retry_condition_fn``: retry, unless the failure is a ``UserError`` (a missing
    folder, a model that is not there...), which would fail the same way every time."""
    try:
        state.result()
    except BaseException as e:  # noqa: BLE001 - the failed state's exception, inspected
        return user_error_in(e) is None
    return True
