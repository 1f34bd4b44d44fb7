"""ConversionReview answers (rbg.runtime.conversion): every object converted or the whole review failed."""

from __future__ import annotations

from typing import Any

from rbg.runtime.conversion import conversion_response, is_conversion_review


def review(objects: Any, desired: Any = "example.com/v2") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects},
    }


def rename(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    spec = dict(obj.get("spec") or {})
    if "size" in spec:
        spec["replicas"] = spec.pop("size")
    if spec.get("replicas") == "boom":
        raise ValueError("cannot read replicas")
    return {**obj, "spec": spec}


def widget(name: str, version: str = "example.com/v1", size: Any = 1) -> dict[str, Any]:
    return {"apiVersion": version, "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}}


def test_every_object_is_converted_to_the_desired_version_in_order() -> None:
    out = conversion_response(review([widget("a"), widget("b", size=3)]), rename)
    assert out["kind"] == "ConversionReview"
    assert out["response"]["uid"] == "u-1"
    assert out["response"]["result"] == {"status": "Success"}
    assert [
        (o["apiVersion"], o["metadata"]["name"], o["spec"]) for o in out["response"]["convertedObjects"]
    ] == [
        ("example.com/v2", "a", {"replicas": 1}),
        ("example.com/v2", "b", {"replicas": 3}),
    ]


def test_an_object_already_in_the_desired_version_is_returned_as_it_is() -> None:
    same = widget("a", version="example.com/v2")
    out = conversion_response(review([same]), rename)
    assert out["response"]["convertedObjects"] == [same]


def test_a_failing_conversion_fails_the_whole_review_with_the_objects_name() -> None:
    out = conversion_response(review([widget("a"), widget("bad", size="boom")]), rename)
    assert "convertedObjects" not in out["response"]
    assert out["response"]["result"]["status"] == "Failure"
    assert out["response"]["result"]["message"] == (
        "converting Widget bad to example.com/v2: cannot read replicas"
    )


def test_a_malformed_review_is_answered_not_raised() -> None:
    for bad in (review(None), review([1]), review([], desired=None), {"kind": "ConversionReview"}):
        out = conversion_response(bad, rename)
        assert out["response"]["result"]["status"] == "Failure"
    assert is_conversion_review(review([]))
    assert not is_conversion_review({"kind": "AdmissionReview"})
    assert not is_conversion_review(None)
