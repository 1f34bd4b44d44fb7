"""ConversionReview (apiextensions.k8s.io/v1) for CRDs with `conversion.strategy: Webhook`: the API
server sends objects in the version they are stored or written in and asks for `desiredAPIVersion`.

Generic: the conversion itself is a function `(object, desired apiVersion) -> object` the operator
registers (rbg.api.conversion for its kinds). A conversion that fails answers `Failure` with the
reason for the whole review (the API server then fails the read or write that needed it, which is
what it does for a webhook that cannot be reached): never a half-converted list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Converter = Callable[[Obj, str], Obj]
REVIEW_VERSION = "apiextensions.k8s.io/v1"


def is_conversion_review(review: Any) -> bool:
    return isinstance(review, dict) and review.get("kind") == "ConversionReview"


def conversion_response(review: Obj, convert: Converter) -> Obj:
    """The ConversionReview answering `review` (a malformed one gets a Failure naming what is wrong)."""
    found = review.get("request")
    request: Obj = found if isinstance(found, dict) else {}
    uid = str(request.get("uid", ""))
    desired = request.get("desiredAPIVersion")
    objects = request.get("objects")
    if not isinstance(desired, str) or not isinstance(objects, list):
        return _answer(uid, failure="expected request.desiredAPIVersion and request.objects")
    converted: list[Obj] = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            return _answer(uid, failure=f"objects[{i}] is not an object")
        if obj.get("apiVersion") == desired:
            converted.append(obj)  # nothing to do (the API server may still send it)
            continue
        try:
            out = convert(obj, desired)
        except Exception as exc:  # a converter bug fails the review with a reason, never the server
            name = (obj.get("metadata") or {}).get("name", "?")
            return _answer(uid, failure=f"converting {obj.get('kind')} {name} to {desired}: {exc}")
        converted.append({**out, "apiVersion": desired})
    return _answer(uid, converted=converted)


def _answer(uid: str, converted: list[Obj] | None = None, failure: str | None = None) -> Obj:
    response: Obj = {"uid": uid}
    if failure is None:
        response["convertedObjects"] = converted or []
        response["result"] = {"status": "Success"}
    else:
        response["result"] = {"status": "Failure", "message": failure}
    return {"apiVersion": REVIEW_VERSION, "kind": "ConversionReview", "response": response}
