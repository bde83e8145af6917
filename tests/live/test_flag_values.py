"""Flag values no command could use are one line and status 2, before anything starts.

An operator's audit found tracebacks for these (``--timeout nan`` ended in a JSON error,
``--port 70000`` in ``OverflowError`` from ``bind()``, a malformed ``--master`` in
``httpx.InvalidURL``), and ``dev --max-restarts -1`` accepted.
"""

from __future__ import annotations

import pytest

from orchlive.__main__ import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "--name", "x", "--timeout", "nan", "--", "true"], "argument --timeout: 'nan': a finite number"),
        (["submit", "--name", "x", "--timeout", "inf", "--", "true"], "argument --timeout: 'inf': a finite number"),
        (["dev", "--port", "70000"], "argument --port: 70000 is not a port (1..65535)"),
        (["dev", "--etcd-port", "-1"], "argument --etcd-port: -1 is not a port (1..65535)"),
        (["dev", "--metrics-port", "http"], "argument --metrics-port: 'http' is not a port number"),
        (["dev", "--max-restarts", "-1"], "argument --max-restarts: -1: a whole number >= 0"),
        (["master", "--port", "0"], "argument --port: 0 is not a port (1..65535)"),
    ],
)
def test_a_value_no_command_could_use_is_refused_by_the_parser(argv: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_master_url_that_is_not_one_is_named(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--master", "http://[::1", "tasks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --master: 'http://[::1' is not a URL") and err.count("\n") == 1


def test_dev_checks_what_its_workers_will_offer_before_starting_anything(capsys) -> None:  # type: ignore[no-untyped-def]
    # It used to start etcd and a master, then fail when the worker refused a gpu of 2.5 GPUs.
    assert main(["dev", "--workers", "1", "--resource", "gpu=2500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resource: gpu=2500: gpu capacity is whole GPUs") and err.count("\n") == 1


def test_waiting_rules_without_parents_are_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--master", "http://127.0.0.1:1", "submit", "--name", "x", "--on", "completion", "--", "true"]) == 2
    assert capsys.readouterr().err == (
        "error: submit: --on says how to wait for parents: give them with --after ID,NAME\n"
    )
