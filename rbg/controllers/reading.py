"""Reading a cached object as its API model, the same way in every reconciler."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from rbg.runtime.events import EventRecorder
from rbg.runtime.objects import Obj

M = TypeVar("M", bound=BaseModel)


def read(model: type[M], obj: Obj, recorder: EventRecorder) -> M | None:
    """The object as `model`; None, with an `InvalidSpec` event, for one the model cannot read (stored
    before the CRD schema tightened): a reconciler never crashes on it."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        recorder.event(obj, "Warning", "InvalidSpec", f"cannot read the object: {exc.errors()[0]['msg']}")
        return None
