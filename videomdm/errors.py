"""The one error type a user sees: ``UserError``.

A user error is a problem with what the user gave or has (a path, a setting, a device, a model
or clip that is not there): retrying cannot fix it, and a traceback does not help. The command
line prints its message as one line and exits non-zero; tasks never retry it; Prefect's console
lines about it are left out (the Prefect UI still has the whole record).

It subclasses ``ValueError`` so that ``except ValueError`` around older call sites keeps working.
Imports nothing, so every layer (models included) can raise it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, file, setting or state the user can fix; the message says what and how."""


def user_error_in(exc: BaseException | None) -> UserError | None:
    """The ``UserError`` in ``exc``'s cause/context chain (``exc`` itself first), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def user_error_names() -> frozenset[str]:
    """Class names of ``UserError`` and its subclasses (as Prefect writes them in state text)."""
    names, todo = set(), [UserError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)
