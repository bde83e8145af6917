"""The REST API v1 of the Go orchestrator, on FastAPI; see ``app.create_app``."""

from orchlive.api.app import create_app

__all__ = ["create_app"]
