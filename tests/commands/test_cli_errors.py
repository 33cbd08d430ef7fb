"""The ``ecrm`` entry point answers bad command lines with a usage message and exit code 2, not a traceback."""

from __future__ import annotations

import sys

import pytest

from cli.main import main


@pytest.mark.parametrize("argv, says", [
    (["score"], "Missing option '--out'"),
    (["train", "--no-such-option"], "No such option: --no-such-option"),
    (["no-such-command"], "No such command 'no-such-command'"),
])
def test_a_bad_command_line_is_a_usage_error(monkeypatch, capsys, argv, says):
    monkeypatch.setattr(sys, "argv", ["ecrm", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
