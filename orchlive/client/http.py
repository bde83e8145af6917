"""The client's HTTP calls: one ``Api`` per command, every failure one line naming what went wrong.

A 422 from the API is rendered as ``submit: resources.cpu: Input should be ...`` (the
field path without FastAPI's ``body``/``query`` prefix, then the message), never as
raw JSON; an unreachable master names the address tried and how to point elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from orchlive.cli.usage import UsageError

__all__ = ["Api", "error_line"]

_WHERE = ("body", "query", "path", "header")
# Answers after which a submission may or may not have been written: sent again, same key.
_RESEND = (502, 503, 504)
FOLLOW_RETRY_S = 30.0  # ``events -f``: how long a lost master may stay unreachable before it is an error


def _field_error(error: dict[str, Any]) -> str:
    """``resources.cpu: Input should be ...`` from one FastAPI/pydantic error entry."""
    loc = [str(part) for part in error.get("loc", [])]
    if loc and loc[0] in _WHERE:
        loc = loc[1:]
    message = str(error.get("msg", "invalid"))
    return f"{'.'.join(loc)}: {message}" if loc else message


def error_line(response: httpx.Response) -> str:
    """One line for an error answer: the field paths and messages of a 422, else its ``detail``."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list) and detail:
        line = "; ".join(_field_error(e) if isinstance(e, dict) else str(e) for e in detail)
    elif isinstance(detail, str):
        line = detail
    else:
        line = f"HTTP {response.status_code}: {response.text.strip()[:200] or response.reason_phrase}"
    if response.status_code == 401:
        line += " (set ORCH_API_TOKEN)"
    return line.replace("\n", " ")


class Api:
    """The master's REST API for one client command (``command`` prefixes every error line)."""

    def __init__(self, master: str, command: str) -> None:
        token = os.environ.get("ORCH_API_TOKEN")
        self.master = master.rstrip("/")
        self.command = command
        try:
            self.http = httpx.Client(
                base_url=self.master, timeout=10.0, headers={"Authorization": f"Bearer {token}"} if token else {}
            )
        except httpx.InvalidURL as err:
            raise UsageError(f"--master: {master!r} is not a URL ({err}); e.g. http://127.0.0.1:8080") from None

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _unreachable(self, err: httpx.HTTPError) -> UsageError:
        return UsageError(f"cannot reach the master at {self.master} ({err}); set ORCH_MASTER or --master")

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; an error answer or no answer becomes a ``UsageError`` of one line."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        if response.status_code >= 400:
            raise UsageError(f"{self.command}: {error_line(response)}")
        return response

    def submit(self, path: str, body: dict[str, Any], *, tries: int = 3, pause: float = 1.0) -> Any:
        """POST a submission under a fresh ``Idempotency-Key``, sent again (same key) after no answer or a 5xx.

        A POST that timed out may still have created its task (a master frozen for a while
        answers late, or not at all); the key makes the master answer a resent one with
        the first one's task instead of creating a second.
        """
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                response = self.http.post(path, json=body, headers=headers)
            except httpx.TransportError as err:
                if last:
                    raise self._unreachable(err) from None
            else:
                if response.status_code not in _RESEND or last:
                    break
            time.sleep(pause * 2**attempt)
        if response.status_code >= 400:
            raise UsageError(f"{self.command}: {error_line(response)}")
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None).json()

    def get_all(self, path: str, page: int, **params: Any) -> list[Any]:
        """Every item of a paged listing (``offset``/``limit``), ``page`` items a request."""
        items: list[Any] = []
        while True:
            got = self.get(path, **params, offset=len(items), limit=page)
            items.extend(got)
            if len(got) < page:
                return items

    def events(self, since: int | None = None, quiet: float | None = None) -> Iterator[dict[str, Any]]:
        """The event stream, one event dict at a time.

        Args:
            since: replay the recorded events after this id first (0: from the start).
            quiet: stop once no event came for this many seconds (the replay of what is
                recorded arrives at once, so this lists the history and returns); None
                follows for ever: a stream that ends or breaks (the master restarted, a
                standby took over) is resumed after the last event seen, as an SSE client
                does with ``Last-Event-ID``, saying so on stderr; a master unreachable for
                ``FOLLOW_RETRY_S`` is an error.
        """
        last, lost_since = since, None
        while True:
            try:
                for event in self._stream(last, quiet):
                    last, lost_since = event.get("id", last), None
                    yield event
                if quiet is not None:
                    return
                why = "the stream ended"
            except httpx.HTTPError as err:
                if quiet is not None:
                    raise self._unreachable(err) from None
                why = f"the master is unreachable ({err})"
            if lost_since is None:  # said once an outage
                print(f"{self.command}: {why}; resuming after event {last}", file=sys.stderr, flush=True)
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > FOLLOW_RETRY_S:
                raise UsageError(f"{self.command}: {why}, for {FOLLOW_RETRY_S:.0f} s; the last event seen: {last}")
            time.sleep(1.0)

    def _stream(self, since: int | None, quiet: float | None) -> Iterator[dict[str, Any]]:
        """One connection's events; ends quietly after ``quiet`` s without one (None: when the server ends it)."""
        params = {} if since is None else {"since": str(since)}
        timeout = httpx.Timeout(10.0, read=quiet)
        try:
            with self.http.stream("GET", "/api/v1/events", params=params, timeout=timeout) as stream:
                if stream.status_code in _RESEND and quiet is None:  # a master restarting, etcd away: retried
                    raise httpx.HTTPError(f"{stream.status_code} from the master")
                if stream.status_code >= 400:
                    stream.read()
                    raise UsageError(f"{self.command}: {error_line(stream)}")
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        yield json.loads(line[5:].strip())
        except httpx.ReadTimeout:
            if quiet is None:
                raise
