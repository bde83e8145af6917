"""Shared request dependencies: the store, the master, and the optional bearer token.

All are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in its
thread pool, and three thread hand-offs per request took about a fifth of the master's
samples under load (py-spy during ``benchmarks/test_live_load.py``).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from orchlive.master import Master
from orchlive.store import Store
from orchlive.transitions import CreateBatcher

__all__ = ["CreatesDep", "MasterDep", "StoreDep", "require_token"]


async def _store(request: Request) -> Store:
    return request.app.state.store


async def _master(request: Request) -> Master:
    return request.app.state.master


async def _creates(request: Request) -> CreateBatcher:
    return request.app.state.creates


StoreDep = Annotated[Store, Depends(_store)]
CreatesDep = Annotated[CreateBatcher, Depends(_creates)]
MasterDep = Annotated[Master, Depends(_master)]


async def require_token(request: Request) -> None:
    """Every ``/api/v1`` request, reads too: when ``ORCH_API_TOKEN`` is set, demand ``Authorization: Bearer <token>``.

    Reads need it as much as writes: tasks' commands, logs and the event history say what
    the cluster runs and how.
    """
    token = request.app.state.api_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # Compared as bytes: the header arrives as latin-1 text (any byte), the token is UTF-8,
    # and compare_digest refuses non-ASCII text (a 500 anyone could trigger without a token).
    sent = given.strip().encode("latin-1")
    if scheme.lower() != "bearer" or not secrets.compare_digest(sent, token.encode("utf-8")):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
