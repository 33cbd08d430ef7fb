"""benchmarks.scale_bench: process-tree memory sampling and the summary table (no pipeline run)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import psutil

from benchmarks.scale_bench import StageResult, print_table, tree_rss


def _hold(mb: int, seconds: float) -> None:
    block = bytearray(mb * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    time.sleep(seconds)


def test_tree_rss_counts_children() -> None:
    me = psutil.Process(os.getpid())
    alone = tree_rss(me)
    child = mp.get_context("fork").Process(target=_hold, args=(200, 3.0))
    child.start()
    try:
        deadline = time.time() + 3
        best = 0
        while time.time() < deadline and best < alone + 150 * 2**20:
            best = max(best, tree_rss(me))
            time.sleep(0.05)
        assert best >= alone + 150 * 2**20
    finally:
        child.terminate()
        child.join()


def test_tree_rss_of_a_finished_process_is_zero() -> None:
    child = mp.get_context("fork").Process(target=_hold, args=(1, 0.0))
    child.start()
    ps = psutil.Process(child.pid)
    child.join()
    assert tree_rss(ps) == 0


def test_table_shows_growth(capsys) -> None:
    runs = {
        1000: [StageResult("synthesize", 2.0, 2**30), StageResult("score", 1.0, 2**29)],
        2000: [StageResult("synthesize", 5.0, 3 * 2**30), StageResult("score", 4.0, 2**29, ok=False)],
    }
    print_table(runs)
    out = capsys.readouterr().out
    assert "x2.50" in out and "x4.00" in out
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert "3.0 s" in total and "9.0 s" in total and "3.00 GB" in total and "!" in total


def test_stop_tree_ends_the_process() -> None:
    from benchmarks.scale_bench import stop_tree

    child = mp.get_context("fork").Process(target=_hold, args=(1, 60.0))
    child.start()
    ps = psutil.Process(child.pid)
    stop_tree(ps, grace=2.0)  # reaps it (psutil.wait_procs), so ask psutil rather than multiprocessing
    assert not ps.is_running()


def test_stages_are_checked_and_a_continued_workspace_must_exist(tmp_path, capsys):
    import pytest

    from benchmarks.scale_bench import main

    with pytest.raises(SystemExit):
        main(["--stages", "customer_models,bogus", "--root", str(tmp_path)])
    assert "unknown stage(s) ['bogus']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--stages", "customer_models"])
    assert "--stages without synthesize continues kept workspaces: give their --root" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"ws-1000: no kept workspace of 1,000 customers to continue \(stages customer_models, "
                                         r"score need its tables\): run with synthesize and --keep first"):
        main(["--customers", "1000", "--stages", "score,customer_models", "--root", str(tmp_path)])
    assert tmp_path.is_dir()  # nothing of the root was removed


def test_the_stages_run_with_the_configuration_ecrm_config_names(tmp_path, monkeypatch):
    import benchmarks.scale_bench as bench

    config = tmp_path / "levers.yaml"
    config.write_text("churn: {max_training_customers: 25000}\n")
    monkeypatch.setenv("ECRM_CONFIG", str(config))
    seen = []

    def fake_stage(name, settings, ws_root, customers, profile=None, max_rss=None):
        seen.append((name, settings.churn.max_training_customers, settings.workspace))
        return bench.StageResult(name, 0.0, 0)

    monkeypatch.setattr(bench, "run_stage", fake_stage)
    bench.run_size(1000, tmp_path, None, None, [], stages=("synthesize", "features"))
    assert seen == [("synthesize", 25000, tmp_path / "ws-1000"), ("features", 25000, tmp_path / "ws-1000")]
