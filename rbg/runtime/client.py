"""`Kube`: a small async Kubernetes client on plain dicts.

lightkube handles configuration and authentication: kubeconfig contexts, client certificates, exec
plugins, the in-cluster service account and its token rotation (its auth objects are driven here to
produce the Authorization header, refreshed on a 401 as lightkube itself does). Requests go over an
aiohttp session because the runtime needs what a typed client does not offer — raw dicts without model
decoding, watch bookmarks and a resume resourceVersion, metadata-only reads, one request counter for
every call — and because aiohttp is cheap: measured on the local cluster, an httpx request (lightkube's
transport) cost about 1 ms of CPU, three times aiohttp's, and with a large pool httpx re-checks every idle
connection on each request (docs/benchmarks.md). kubernetes_asyncio was tried for the configuration
part; importing it loads its whole generated client, about 40 MiB of resident memory.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar, Literal

import aiohttp
import httpx2
from lightkube.config.client_adapter import user_auth, verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import User
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
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


def _env_proxy(url: str) -> str | None:
    """The proxy $HTTPS_PROXY / $NO_PROXY name for the API server, as client-go would use."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class _Authorization:
    """The Authorization header from a lightkube auth object (token, token file, exec plugin, basic).

    lightkube's auth objects follow httpx's auth-flow protocol: the flow sets the header on a request and,
    given a 401 answer, may produce a fresh one (re-read token file, re-run exec plugin). The header is
    computed once and reused until the API server answers 401.
    """

    def __init__(self, auth: httpx2.Auth | None, url: str) -> None:
        self._auth = auth
        self._url = url
        self.header: str | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str | None:
        if self.header is None and self._auth is not None:
            async with self._lock:
                if self.header is None:
                    self.header = await self._run(refresh=False)
        return self.header

    async def refresh(self, stale: str | None) -> str | None:
        """A new header after a 401 answered to `stale` (None when the auth cannot produce another)."""
        if self._auth is None:
            return None
        async with self._lock:
            if self.header == stale:
                self.header = await self._run(refresh=True)
        return self.header if self.header != stale else None

    async def _run(self, refresh: bool) -> str | None:
        assert self._auth is not None
        request = httpx2.Request("GET", self._url)
        flow = self._auth.async_auth_flow(request)
        request = await flow.__anext__()
        if refresh:
            with contextlib.suppress(StopAsyncIteration):
                request = await flow.asend(httpx2.Response(401, request=request))
        await flow.aclose()
        return request.headers.get("Authorization")


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
        max_connections: int = 64,
    ) -> None:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        single = config.get(context_name=context)
        if single is None:
            raise ValueError(f"the kubeconfig has no context {context or '(current)'}")
        self._base = single.cluster.server.rstrip("/")
        self.host = self._base.split("://", 1)[-1]
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.user_agent = user_agent or f"rbg-operator/{__version__}"
        self.max_connections = max_connections
        self._ssl = verify_cluster(single.cluster, single.user or User(), single.abs_file)
        self._auth = _Authorization(user_auth(single.user), self._base)
        self._proxy = _env_proxy(self._base)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, opened on first use (it must be made inside the running event loop).

        Not trusting the environment: with trust_env, aiohttp looks up proxies and ~/.netrc (in a
        thread) on every request; the proxy is resolved once instead.
        """
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, ssl=self._ssl, keepalive_timeout=KEEPALIVE_SECONDS
            )
            # watch events of large objects exceed aiohttp's default read buffer (etcd allows 1.5 MiB)
            self._session = aiohttp.ClientSession(connector=connector, read_bufsize=2**21)
        return self._session

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
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -----------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: bytes | None,
        headers: dict[str, str],
        limits: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """One request on the shared session, authenticated; the caller reads and releases the response."""
        session = self._open()
        headers["User-Agent"] = self.user_agent
        token = await self._auth.get()
        for _ in range(2):  # a 401 is retried once with a refreshed token
            if token:
                headers["Authorization"] = token
            try:
                response = await session.request(
                    method,
                    self._base + path,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=self._limits(method, params, limits),
                    proxy=self._proxy,
                )
            except _TRANSPORT_ERRORS as exc:
                REST_CLIENT_REQUESTS.labels("<error>", method, self.host).inc()
                raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from exc
            REST_CLIENT_REQUESTS.labels(str(response.status), method, self.host).inc()
            if response.status != 401:
                break
            fresh = await self._auth.refresh(token)
            if fresh is None:
                break
            response.release()
            token = fresh
        return response

    def _limits(
        self, method: str, params: dict[str, str] | None, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientTimeout:
        """The time limits of a request about to be sent; a subclass may refuse it (rbg.runtime.fence)."""
        return limits

    def with_own_pool(self, max_connections: int) -> Kube:
        """This client with a connection pool of its own, opened on first use and closed by `close()`
        (the Lease's renewals must not queue behind the controllers' requests)."""
        other = copy.copy(self)
        other._session = None
        other.max_connections = max_connections
        return other

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
        response = await self._send(method, path, params, content, headers, self.timeout)
        try:
            data = await response.read()
        except _TRANSPORT_ERRORS as exc:
            raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from exc
        finally:
            response.release()
        if response.status >= 400:
            raise ApiError.from_body(response.status, data)
        return json.loads(data)

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

    async def create(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """POST; `dry_run`: validated and admitted as a create would be, nothing stored (dryRun=All)."""
        kind = self.kind_of(obj)
        path = kind.path(obj["metadata"].get("namespace"))
        params = {"dryRun": "All"} if dry_run else None
        result: Obj = await self._request("POST", path, params=params, body=obj)
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

    async def write_status(
        self, kind: Kind, name: str, namespace: str | None, status: Obj, *, field_manager: str
    ) -> bool:
        """Server-side apply of `status` alone onto the object; False when the object is gone."""
        body = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "status": status,
        }
        try:
            await self.apply_status(body, field_manager=field_manager)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

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
        headers = {"Accept": _METADATA_WATCH if metadata_only else "application/json"}
        # no read timeout: the caller enforces inactivity
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.total)
        response = await self._send("GET", kind.path(namespace), params, None, headers, timeout)
        try:
            if response.status >= 400:
                raise ApiError.from_body(response.status, await response.read())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                event_type, obj = event["type"], event["object"]
                if event_type == "ERROR":
                    raise ApiError.from_status(obj)
                yield event_type, obj
        except _TRANSPORT_ERRORS as exc:
            raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from exc
        finally:
            response.close()  # a watch connection is never reused mid-stream
