"""Typed admission: one adapter from an AdmissionReview request to a pure validator of models.

Generic (it takes the pydantic model class as a parameter): the adapter reads the request's object as the
model — a model error denies with its field path — and, on an UPDATE, the old object (None when the
stored object is one the model cannot read, e.g. stored before a schema change: nothing to compare
against); the validator `(new, old) -> (errors, warnings)` knows nothing of AdmissionReviews.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from rbg.runtime.webhook import Request, Validator, Verdict

M = TypeVar("M", bound=BaseModel)


def field_error(exc: ValidationError) -> str:
    """A model error as one message, `<field path>: <message>` (the first error of the object), the
    path written as the validators write theirs: `spec.roles[0].name`."""
    err = exc.errors()[0]
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{path}: {err['msg']}"


def old_object(model: type[M], request: Request) -> M | None:
    """The old object of an UPDATE as `model`; None on a CREATE or when the model cannot read it."""
    if request.get("operation") != "UPDATE" or not request.get("oldObject"):
        return None
    try:
        return model.model_validate(request["oldObject"])
    except ValidationError:
        return None


def typed(model: type[M], check: Callable[[M, M | None], tuple[Iterable[str], Iterable[str]]]) -> Validator:
    """A webhook handler that hands `check` the request's (new, old) objects as `model`s; its errors
    deny the request (all of them shown), its warnings go to the client either way."""

    async def handler(request: Request) -> Verdict:
        try:
            new = model.model_validate(request.get("object") or {})
        except ValidationError as exc:
            return Verdict([field_error(exc)])
        errors, warnings = check(new, old_object(model, request))
        return Verdict(list(errors), list(warnings))

    return handler


def typed_async(
    model: type[M], check: Callable[[M, M | None, Request], Awaitable[tuple[Iterable[str], Iterable[str]]]]
) -> Validator:
    """`typed` for a check that asks the API server too (e.g. a server-side dry run); it also gets the
    request (its namespace: an object's may be unset on a create)."""

    async def handler(request: Request) -> Verdict:
        try:
            new = model.model_validate(request.get("object") or {})
        except ValidationError as exc:
            return Verdict([field_error(exc)])
        errors, warnings = await check(new, old_object(model, request), request)
        return Verdict(list(errors), list(warnings))

    return handler
