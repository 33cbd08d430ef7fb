"""``make bench-scale``: wall time and peak memory of every pipeline stage on a large synthetic shop.

Each stage (synthesize, feature snapshots, the Feast online-store load as of the score date, recommender,
the customer models (churn, next purchase and segments one after the other, sharing what they read, as
``ecrm train`` runs them), batch score) runs in its own fresh process, one after the other, in a
fresh workspace; the parent samples the resident memory of that process and all its children (psutil)
and prints a heartbeat while it runs. Stages run sequentially (``ecrm demo`` overlaps the recommender with the customer models), so
the per-stage peaks are clean and the total is an upper bound of the pipeline's wall time.

Usage: python -m benchmarks.scale_bench [--customers 100000,1000000] [--root DIR] [--keep]
                                         [--profile STAGE] [--stop-after STAGE] [--max-rss-gb GB]
                                         [--stages STAGE,STAGE,...]
``--stages`` without ``synthesize`` continues the workspaces an earlier ``--keep`` run left in ``--root``
(they are not cleared), e.g. the later stages of a 1M shop after its first stages.
SIGTERM or Ctrl-C stops the running stage's processes and still prints the table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from serving.process import terminate_tree

STAGES = ("synthesize", "features", "online_load", "recommender", "customer_models", "score")
HEARTBEAT_S = 30.0
SAMPLE_S = 0.1
CHILDREN_SCAN_S = 1.0
GB = 1024 ** 3


@dataclass
class StageResult:
    """Wall time and peak resident memory (bytes) of one stage."""

    name: str
    seconds: float
    peak_rss: int
    ok: bool = True


def _training_features(settings, ws, say: Callable[[str], None]) -> list[str]:
    """The customer models' snapshots, as ``ecrm train`` computes them: as of the score date for every
    customer, at the training cutoffs for the training sample; returns the feature views."""
    from training.churn_pipeline import stacked_cutoffs, training_features
    from training.labels import workspace_order_rows

    rows, as_of = workspace_order_rows(ws)
    cutoffs = stacked_cutoffs(settings, rows, as_of, int(settings.churn.horizon_days))
    say(f"snapshots at {len(cutoffs)} cutoffs and as of {as_of.date()}")
    _, views, _ = training_features(settings, ws, rows, cutoffs, as_of, say)
    return views


def _stage_body(name: str, settings, ws, customers: int, say: Callable[[str], None]) -> None:
    """Run one pipeline stage in this process. Training stages always train (``force``): on a kept
    workspace they would otherwise find their model already trained on the same data and skip."""
    if name == "synthesize":
        from features.synthetic_stage import synthesize_into
        synthesize_into(settings, ws, customers=customers, progress=say)
    elif name == "features":  # the customer views, as `ecrm train` builds them (no model reads product_stats)
        say(f"{len(_training_features(settings, ws, say))} feature views registered")
    elif name == "online_load":  # as the demo's second process: Feast materialization of the score date
        from features.pipeline import customer_views
        from features.snapshots import workspace_as_of
        from features.store import apply_definitions, materialize_as_of, open_store
        as_of = workspace_as_of(ws)
        store = open_store(settings, ws)
        views = customer_views(apply_definitions(store, ws))
        say(f"loading {views} as of {as_of.date()} into the online store")
        materialize_as_of(store, ws, as_of, views, workers=settings.compute.threads)
    elif name == "customer_models":  # as `ecrm train`: one process, the order rows and score-date features read once
        from training.churn_pipeline import train_churn
        from training.customer_inputs import CustomerInputs
        from training.next_purchase_pipeline import train_next_purchase
        from training.segment_pipeline import train_segments
        def timed(label: str, train: Callable):
            """``train()``, reported with its message and wall time under ``label``."""
            t = time.perf_counter()
            res = train()
            say(f"{getattr(res, 'message', 'read')} ({label}: {time.perf_counter() - t:.1f} s)")
            return res

        inputs = timed("order rows", lambda: CustomerInputs(ws))
        churn = timed("churn", lambda: train_churn(settings, ws, progress=say, force=True, inputs=inputs))
        timed("next purchase", lambda: train_next_purchase(settings, ws, progress=say, force=True,
                                                          base=churn.data, inputs=inputs))
        del churn
        timed("segments", lambda: train_segments(settings, ws, progress=say, force=True, inputs=inputs))
    elif name == "recommender":
        from training.recommend_pipeline import train_recommender
        say(train_recommender(settings, ws, progress=say, force=True).message)
    elif name == "score":
        from serving.batch import score_batch
        res = score_batch(settings, ws, ws.outputs_dir / "latest", progress=say, reuse_online=True)
        say(f"{res.n_scored:,} customers scored")
    else:
        raise ValueError(f"unknown stage {name!r}")


def _child(name: str, settings, ws_root: str, customers: int, profile: str | None) -> None:
    """Process entry point: run ``name``, optionally under cProfile (stats written to ``profile``)."""
    from features.storage import Workspace
    from training.registry import configure

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"   +{time.perf_counter() - t0:6.1f}s {msg}", flush=True)

    ws = Workspace(Path(ws_root))
    if name != "synthesize":
        configure(settings, ws)
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.runcall(_stage_body, name, settings, ws, customers, say)
        prof.dump_stats(profile)
        say(f"profile written to {profile}")
    else:
        _stage_body(name, settings, ws, customers, say)
    usage, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime  # worker processes once ended
    wall = time.perf_counter() - t0
    say(f"process max RSS {usage.ru_maxrss / 1024 ** 2:.2f} GB; CPU {cpu:.0f} s over {wall:.0f} s wall "
        f"({cpu / max(wall, 1e-9):.2f} cores busy on average)")


def tree_rss(proc: psutil.Process, procs: list[psutil.Process] | None = None) -> int:
    """Resident memory of ``proc`` and all its descendants (or of ``procs``, a list from an earlier
    :func:`tree_procs`), in bytes; 0 once ``proc`` is gone."""
    if procs is None:
        procs = tree_procs(proc)
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def tree_procs(proc: psutil.Process) -> list[psutil.Process]:
    """``proc`` and its descendants ([] once it is gone). Scans /proc: call it rarely."""
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class StageInterrupted(Exception):
    """A stage was stopped (Ctrl-C or SIGTERM); carries what was measured until then."""

    def __init__(self, result: StageResult) -> None:
        super().__init__(result.name)
        self.result = result


def stop_tree(proc: psutil.Process, grace: float = 5.0) -> None:
    """Terminate ``proc`` and its descendants (kill what is left after ``grace`` seconds)."""
    try:
        procs = [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return
    terminate_tree(procs, grace)


def _sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_stage(name: str, settings, ws_root: Path, customers: int, profile: str | None = None,
              max_rss: int | None = None) -> StageResult:
    """Run one stage in a spawned process; sample its process tree's RSS; heartbeat while it runs.
    The stage is stopped (and counted as failed) when its tree's RSS exceeds ``max_rss`` bytes."""
    print(f"-- {name} ({customers:,} customers)", flush=True)
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_child, args=(name, settings, str(ws_root), customers, profile))
    t0 = time.perf_counter()
    proc.start()
    ps = psutil.Process(proc.pid)
    peak = 0
    next_beat = t0 + HEARTBEAT_S
    procs, next_scan = [ps], t0 + CHILDREN_SCAN_S
    try:
        while proc.is_alive():
            if time.perf_counter() >= next_scan:  # new children: scanning /proc costs CPU, so only every second
                procs, next_scan = tree_procs(ps), time.perf_counter() + CHILDREN_SCAN_S
            peak = max(peak, tree_rss(ps, procs))
            if max_rss and peak > max_rss:
                print(f"   {name}: process tree RSS {peak / GB:.2f} GB is over the limit "
                      f"{max_rss / GB:.2f} GB: stopping it", flush=True)
                stop_tree(ps)
                break
            now = time.perf_counter()
            if now >= next_beat:
                print(f"   ..{now - t0:6.0f}s {name} running, process tree RSS {tree_rss(ps, procs) / GB:.2f} GB "
                      f"(peak so far {peak / GB:.2f} GB)", flush=True)
                next_beat += HEARTBEAT_S
            time.sleep(SAMPLE_S)
    except KeyboardInterrupt:
        stop_tree(ps)
        proc.join()
        print(f"   {name}: interrupted after {time.perf_counter() - t0:.1f} s, peak RSS so far {peak / GB:.2f} GB",
              flush=True)
        raise StageInterrupted(StageResult(name, time.perf_counter() - t0, peak, ok=False)) from None
    proc.join()
    seconds = time.perf_counter() - t0
    ok = proc.exitcode == 0
    print(f"   {name}: {seconds:.1f} s, peak RSS {peak / GB:.2f} GB{'' if ok else f', FAILED (exit {proc.exitcode})'}",
          flush=True)
    return StageResult(name, seconds, peak, ok)


def run_size(customers: int, root: Path, profile: str | None, stop_after: str | None,
             results: list[StageResult], max_rss: int | None = None, stages: tuple[str, ...] = STAGES) -> None:
    """``stages`` (in pipeline order) for one shop size, appended to ``results``: in a fresh workspace under
    ``root`` when they include ``synthesize``, else in the one an earlier ``--keep`` run left there."""
    from configs.settings import load_settings

    ws_root = root / f"ws-{customers}"
    stages = tuple(n for n in STAGES if n in stages)
    if "synthesize" in stages:
        shutil.rmtree(ws_root, ignore_errors=True)
    elif not (ws_root / "data" / "orders.parquet").is_file():
        raise SystemExit(f"{ws_root}: no kept workspace of {customers:,} customers to continue (stages "
                         f"{', '.join(stages)} need its tables): run with synthesize and --keep first")
    settings = load_settings(workspace=ws_root)
    for name in stages:
        prof = str(root / f"profile-{name}-{customers}.pstats") if profile == name else None
        res = run_stage(name, settings, ws_root, customers, prof, max_rss)
        results.append(res)
        if name == stop_after or (not res.ok and name in ("synthesize", "features")):
            break  # later stages need the tables and snapshots; after other failures they still run


def print_table(runs: dict[int, list[StageResult]]) -> None:
    """Per-stage seconds and peak GB for each size; the growth factor between consecutive sizes."""
    sizes = list(runs)
    print("\necrm scale benchmark: stages run sequentially, each in a fresh process; peak = RSS of the process tree")
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / GB:.1f} GB, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    head = f"  {'stage':<14}" + "".join(f"{f'{n:,} cust.':>24}" for n in sizes)
    if len(sizes) > 1:
        head += "".join(f"{f'x{b / a:g} cust.: time':>20}" for a, b in zip(sizes, sizes[1:]))
    print(head)
    by = {n: {r.name: r for r in rs} for n, rs in runs.items()}
    for name in [*STAGES, "total"]:
        line = f"  {name:<14}"
        vals = []
        for n in sizes:
            if name == "total":
                rs = runs[n]
                sec, peak = sum(r.seconds for r in rs), max((r.peak_rss for r in rs), default=0)
                r = StageResult("total", sec, peak, all(r.ok for r in rs))
            else:
                r = by[n].get(name)
            vals.append(r)
            line += f"{'-':>24}" if r is None else f"{r.seconds:9.1f} s {r.peak_rss / GB:6.2f} GB{'' if r.ok else '!':>3}"
        for a, b in zip(vals, vals[1:]):
            line += f"{'-':>20}" if a is None or b is None or a.seconds <= 0 else f"{f'x{b.seconds / a.seconds:.2f}':>20}"
        print(line)
    print("  (total memory = the largest stage peak; '!' = stage failed)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", default="1000000", help="comma-separated shop sizes (default 1000000)")
    ap.add_argument("--root", type=Path, default=None, help="folder for the workspaces (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the workspaces")
    ap.add_argument("--profile", choices=STAGES, default=None, help="run this stage under cProfile (pstats in root)")
    ap.add_argument("--stop-after", choices=STAGES, default=None, help="skip the stages after this one")
    ap.add_argument("--max-rss-gb", type=float, default=None,
                    help="stop a stage whose process tree goes over this memory (protects a shared machine)")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help="comma-separated stages to run, in pipeline order (default all); without synthesize, "
                         "continue the workspaces kept in --root")
    args = ap.parse_args(argv)
    stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
    unknown = [x for x in stages if x not in STAGES]
    if unknown or not stages:
        ap.error(f"--stages: unknown stage(s) {unknown}; the stages are {', '.join(STAGES)}")
    if "synthesize" not in stages and args.root is None:
        ap.error("--stages without synthesize continues kept workspaces: give their --root")
    max_rss = int(args.max_rss_gb * GB) if args.max_rss_gb else None
    sizes = [int(s.replace("_", "")) for s in args.customers.split(",") if s.strip()]
    root = args.root or Path(tempfile.mkdtemp(prefix="ecrm-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    runs: dict[int, list[StageResult]] = {}
    signal.signal(signal.SIGTERM, _sigterm)  # `timeout` or kill: stop the stage's processes, print the table
    try:
        for n in sizes:
            runs[n] = []
            run_size(n, root, args.profile, args.stop_after, runs[n], max_rss, stages)
            if not args.keep and "synthesize" in stages:  # a continued workspace is left as it was kept
                shutil.rmtree(root / f"ws-{n}", ignore_errors=True)
    except StageInterrupted as stop:
        runs[n].append(stop.result)
        print("interrupted", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        if runs:
            print_table(runs)
        if args.profile:
            print(f"profiles in {root}")
        elif not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
