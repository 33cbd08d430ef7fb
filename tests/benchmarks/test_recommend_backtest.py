"""benchmarks.recommend_backtest --candidates: the ranker's candidates per source, checked like the settings."""

from __future__ import annotations

import pytest

from benchmarks.recommend_backtest import candidate_settings, main
from configs.settings import CandidateSettings


def test_named_sources_are_set_and_the_others_keep_their_defaults():
    assert candidate_settings("together=20, similar=20,ease=20") == CandidateSettings(together=20, similar=20, ease=20)
    assert candidate_settings("") == CandidateSettings()


@pytest.mark.parametrize("text, message", [
    ("together", "'together' is not source=N"),
    ("=3", "'=3' is not source=N"),
    ("sideways=3", "sideways: Extra inputs are not permitted"),
    ("own=0", "own: Input should be greater than or equal to 1"),
    ("ease=many", "ease: Input should be a valid integer"),
])
def test_bad_candidates_are_named(text, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        candidate_settings(text)


def test_the_command_refuses_bad_candidates_before_reading_anything(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--workspace", str(tmp_path / "missing"), "--cutoff", "2011-04-01", "--candidates", "own=0"])
    assert "--candidates: own: Input should be greater than or equal to 1" in capsys.readouterr().err
