"""``python -m orchlive``'s server commands (``master``, ``worker``, ``dev``) and their shared flags.

The client commands (``tasks``, ``submit``, ``logs``...) are in ``orchlive.client``.
"""

from orchlive.cli.usage import UsageError

__all__ = ["UsageError"]
