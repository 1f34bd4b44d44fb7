"""`Kube`: a small async Kubernetes client on plain dicts.

lightkube handles configuration and authentication (kubeconfig, in-cluster service account, exec
plugins, token rotation); its typed API is reachable as `Kube.lightkube`. The runtime itself talks to
the API through lightkube's authenticated httpx2 client because it needs what the typed API does not
expose: watch bookmarks, a resourceVersion to resume from, raw dicts without model decoding, and one
request counter for every call.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx2
import lightkube
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from prometheus_client import Counter

from rbg import __version__
from rbg.runtime.errors import ApiError
from rbg.runtime.objects import BUILTIN_KINDS, Kind, Obj

REST_CLIENT_REQUESTS = Counter(
    "rest_client_requests_total",
    "Number of HTTP requests, partitioned by status code, method, and host.",
    ["code", "method", "host"],
)

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
PatchType = Literal["merge", "json", "strategic", "apply"]

LIST_PAGE_SIZE = 500
# metadata-only reads: the server sends PartialObjectMetadata(List) instead of whole objects
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
KEEPALIVE_SECONDS = 120.0


async def _count_response(response: httpx2.Response) -> None:
    request = response.request
    REST_CLIENT_REQUESTS.labels(str(response.status_code), request.method, request.url.netloc.decode()).inc()


class Kube:
    """Async API access on plain dicts; every failure is an `ApiError`.

    `kubeconfig=None` uses lightkube's discovery: in-cluster service account, then $KUBECONFIG, then
    ~/.kube/config.
    """

    _kinds: ClassVar[dict[tuple[str, str], Kind]] = {(k.api_version, k.kind): k for k in BUILTIN_KINDS}

    def __init__(
        self,
        kubeconfig: str | Path | None = None,
        *,
        context: str | None = None,
        timeout: float = 30.0,
        user_agent: str | None = None,
        max_connections: int = 128,
    ) -> None:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        single = config.get(context_name=context)
        if single is None or single.user is None:
            raise ValueError(
                f"kubeconfig has no context {context!r} with a user" if context else "no context"
            )
        # httpx keeps 20 idle connections by default: with workers applying children concurrently most
        # requests would then open (and TLS-handshake) a new connection. Keep them all alive instead.
        transport = httpx2.AsyncHTTPTransport(
            verify=verify_cluster(single.cluster, single.user, single.abs_file),
            limits=httpx2.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
        )
        self.lightkube = lightkube.AsyncClient(
            single, timeout=httpx2.Timeout(timeout), field_manager="rbg", transport=transport
        )
        # lightkube keeps its authenticated httpx2 client here; there is no public accessor.
        http = self.lightkube._client._client
        if not isinstance(http, httpx2.AsyncClient):  # pragma: no cover - guards a lightkube upgrade
            raise TypeError(f"unexpected lightkube transport {type(http)!r}")
        http.headers["User-Agent"] = user_agent or f"rbg-operator/{__version__}"
        http.event_hooks["response"].append(_count_response)
        self.http = http
        self.host = http.base_url.netloc.decode()

    @classmethod
    def register(cls, kind: Kind) -> Kind:
        """Make `apply`/`create` (which read apiVersion/kind from the object) know a CRD's plural."""
        cls._kinds[(kind.api_version, kind.kind)] = kind
        return kind

    @classmethod
    def kind_of(cls, obj: Obj) -> Kind:
        try:
            return cls._kinds[(obj["apiVersion"], obj["kind"])]
        except KeyError:
            raise ValueError(
                f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}: Kube.register() it first"
            ) from None

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -----------------------------------------------------------------------------------

    async def _send(self, request: httpx2.Request, *, stream: bool = False) -> httpx2.Response:
        try:
            return await self.http.send(request, stream=stream)
        except httpx2.TransportError as exc:
            REST_CLIENT_REQUESTS.labels("<error>", request.method, self.host).inc()
            raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from exc

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        headers = {"Accept": accept}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        request = self.http.build_request(method, path, params=params, content=content, headers=headers)
        response = await self._send(request)
        if response.status_code >= 400:
            raise ApiError.from_body(response.status_code, response.content)
        return response.json()

    # -- verbs --------------------------------------------------------------------------------------

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        try:
            obj: Obj = await self._request("GET", kind.path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        metadata_only: bool = False,
    ) -> tuple[builtins.list[Obj], str]:
        """All items (pages of LIST_PAGE_SIZE via limit/continue) and the list's resourceVersion.

        Items get apiVersion/kind filled in (the API leaves them out of list items), so every cached
        object is self-describing. `metadata_only`: items are PartialObjectMetadata (metadata alone).
        """
        accept = _METADATA_LIST if metadata_only else "application/json"
        params = {"limit": str(LIST_PAGE_SIZE)}
        if label_selector:
            params["labelSelector"] = label_selector
        items: builtins.list[Obj] = []
        resource_version = ""
        while True:
            page = await self._request("GET", kind.path(namespace), params=params, accept=accept)
            for item in page.get("items") or ():
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
            meta = page.get("metadata", {})
            resource_version = resource_version or meta.get("resourceVersion", "")
            if not meta.get("continue"):
                return items, resource_version
            params["continue"] = meta["continue"]

    async def create(self, obj: Obj) -> Obj:
        kind = self.kind_of(obj)
        result: Obj = await self._request("POST", kind.path(obj["metadata"].get("namespace")), body=obj)
        return result

    async def replace(self, obj: Obj) -> Obj:
        """PUT; with metadata.resourceVersion set this is an optimistic-concurrency write (409 on race)."""
        kind = self.kind_of(obj)
        meta = obj["metadata"]
        result: Obj = await self._request("PUT", kind.path(meta.get("namespace"), meta["name"]), body=obj)
        return result

    async def apply(self, obj: Obj, *, field_manager: str = "rbg", force: bool = True) -> Obj:
        """Server-side apply: the API merges `obj` into the live object, owned by `field_manager`."""
        return await self._apply(obj, None, field_manager, force)

    async def apply_status(self, obj: Obj, *, field_manager: str = "rbg", force: bool = True) -> Obj:
        """Server-side apply on the /status subresource: only `status` of `obj` is written."""
        return await self._apply(obj, "status", field_manager, force)

    async def _apply(self, obj: Obj, subresource: str | None, field_manager: str, force: bool) -> Obj:
        kind = self.kind_of(obj)
        meta = obj["metadata"]
        path = kind.path(meta.get("namespace"), meta["name"], subresource)
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        # JSON is YAML, and the apply endpoint accepts it as such.
        result: Obj = await self._request(
            "PATCH", path, params=params, body=obj, content_type=PATCH_CONTENT_TYPES["apply"]
        )
        return result

    async def patch(
        self,
        kind: Kind,
        name: str,
        namespace: str | None,
        patch: Obj | builtins.list[Any],
        patch_type: PatchType = "merge",
        *,
        subresource: str | None = None,
        field_manager: str = "rbg",
    ) -> Obj:
        result: Obj = await self._request(
            "PATCH",
            kind.path(namespace, name, subresource),
            params={"fieldManager": field_manager},
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )
        return result

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
        preconditions_uid: str | None = None,
    ) -> bool:
        """True if the API accepted the deletion, False if the object was already gone."""
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if preconditions_uid:
            options["preconditions"] = {"uid": preconditions_uid}
        try:
            await self._request("DELETE", kind.path(namespace, name), body=options)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def watch_stream(
        self,
        kind: Kind,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        metadata_only: bool = False,
    ) -> AsyncGenerator[tuple[str, Obj], None]:
        """(type, object) pairs of one watch request, bookmarks included, until the server ends it.

        A watch ERROR event (e.g. 410 Gone for a compacted resourceVersion) is raised as `ApiError`.
        There is no read timeout: the caller enforces inactivity (see `Informer`). Close the iterator
        (`contextlib.aclosing`) to release the connection early.
        """
        params = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(timeout_seconds)),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        timeout = httpx2.Timeout(self.http.timeout.connect, read=None)
        request = self.http.build_request(
            "GET",
            kind.path(namespace),
            params=params,
            headers={"Accept": _METADATA_WATCH if metadata_only else "application/json"},
            timeout=timeout,
        )
        response = await self._send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise ApiError.from_body(response.status_code, await response.aread())
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                event_type, obj = event["type"], event["object"]
                if event_type == "ERROR":
                    raise ApiError.from_status(obj)
                yield event_type, obj
        except httpx2.TransportError as exc:
            raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from exc
        finally:
            await response.aclose()
