"""The probe and metrics HTTP server (aiohttp, on the event loop — no threads).

`/healthz` is a liveness probe that means something: it fails when an informer's watch has been silent
for too long, the "operator alive but deaf" failure mode of stalled watch streams. `/readyz` gates on
cache sync. `/metrics` serves the default prometheus registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

Check = Callable[[], list[str]]
"""Returns the problems found; an empty list means healthy / ready."""


def _probe(check: Check) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        problems = check()
        if problems:
            return web.Response(status=503, text="\n".join(problems) + "\n")
        return web.Response(text="ok\n")

    return handler


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


class HealthServer:
    """Serves /healthz and /readyz on one port and /metrics on the same or another port."""

    def __init__(
        self, *, healthy: Check, ready: Check, bind: str, health_port: int, metrics_port: int | None
    ) -> None:
        self.bind = bind
        self.health_port = health_port
        self.metrics_port = metrics_port
        self._healthy = healthy
        self._ready = ready
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        """Listen; afterwards `health_port` / `metrics_port` hold the real ports (0 picks a free one)."""
        health = web.Application()
        health.router.add_get("/healthz", _probe(self._healthy))
        health.router.add_get("/readyz", _probe(self._ready))
        shared = self.metrics_port is not None and self.metrics_port == self.health_port
        if shared:
            health.router.add_get("/metrics", _metrics)
        self.health_port = await self._serve(health, self.health_port)
        if shared:
            self.metrics_port = self.health_port
        elif self.metrics_port is not None:
            metrics = web.Application()
            metrics.router.add_get("/metrics", _metrics)
            self.metrics_port = await self._serve(metrics, self.metrics_port)

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, self.bind, port).start()
        address = runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
