"""``python -m orchlive master | worker | dev`` and the client commands (``tasks``, ``submit``, ``logs``...).

Flags override ``ORCH_*`` environment variables (see ``orchlive.config``); the client
finds the master by ``--master`` (before or after the subcommand), else ``ORCH_MASTER``,
else ``http://ORCH_HOST:ORCH_PORT``. Mistakes (an unknown policy, a malformed label, a busy
port, an unreachable master, a field the API refuses) exit with status 2 and one line
naming the problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from orchlive.cli.dev_command import add_dev_parser, run_dev
from orchlive.cli.servers import add_server_parsers, run_master, run_worker
from orchlive.cli.usage import UsageError
from orchlive.client.commands import add_client_parsers, run_client
from orchlive.config import Settings
from orchlive.record import add_record_parser, run_record

__all__ = ["main"]


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchlive", description="The live orchestrator.")
    parser.add_argument("--log-level", default="INFO")
    default_master = settings.master or f"http://{settings.host}:{settings.port}"
    parser.add_argument("--master", default=default_master, help="the master's URL, for the client (ORCH_MASTER)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_server_parsers(sub, settings)
    add_dev_parser(sub, settings)
    add_client_parsers(sub)
    add_record_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    settings = Settings()
    args = _parser(settings).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "master":
            return run_master(args, settings)
        if args.command == "worker":
            return run_worker(args, settings)
        if args.command == "dev":
            return run_dev(args)
        if args.command == "record":
            return run_record(args)
        return run_client(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # ``orchlive events | head``: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
