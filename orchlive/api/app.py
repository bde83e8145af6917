"""The FastAPI application: one router per resource, the master's scheduling loop in its lifespan.

Store errors are answered in one place, not in every route: etcd unreachable is 503, a
transition that lost its compare-and-swap and must not be retried blindly is 409. Every
error body renders whatever the input was, and bodies are capped (``errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request, status

from orchlive.api import dags, events, nodes, system, tasks
from orchlive.api.deps import require_token
from orchlive.api.errors import SafeJSONResponse, install_error_handlers
from orchlive.master import Master
from orchlive.store import Store, StoreUnavailableError
from orchlive.transitions import ConflictError, CreateBatcher

__all__ = ["create_app"]


def create_app(store: Store, master: Master, *, api_token: str | None = None, protect_system: bool = False) -> FastAPI:
    """The API of one master process; its lifespan connects to etcd and runs the scheduler.

    With ``api_token``, every ``/api/v1`` route needs it; ``/health`` and ``/metrics``
    stay open for probes and scrapers unless ``protect_system``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.connect()
        loop = asyncio.create_task(master.run())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
            await store.close()

    app = FastAPI(title="orchlive", version="1", lifespan=lifespan)
    app.state.store = store
    app.state.creates = CreateBatcher(store)  # concurrent submissions share a transaction
    app.state.master = master
    app.state.api_token = api_token
    token = [Depends(require_token)]
    for module in (tasks, dags, nodes, events):
        app.include_router(module.router, dependencies=token)
    app.include_router(system.router, dependencies=token if protect_system else [])
    install_error_handlers(app)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(ConflictError, _conflict)
    return app


async def _store_unavailable(request: Request, err: Exception) -> SafeJSONResponse:
    return SafeJSONResponse({"detail": f"etcd unavailable: {err}"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


async def _conflict(request: Request, err: Exception) -> SafeJSONResponse:
    return SafeJSONResponse({"detail": str(err)}, status_code=status.HTTP_409_CONFLICT)
