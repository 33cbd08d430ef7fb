"""Concurrent calls scored together, each getting its own rows; errors reach every caller."""

from __future__ import annotations

import asyncio

from serving.microbatch import MicroBatcher


def _scorer(calls: list[list[str]]):
    def score(ids: list[str]) -> list[str]:
        calls.append(list(ids))
        if "boom" in ids:
            raise RuntimeError("store down")
        return [f"score:{c}" for c in ids]
    return score


def test_concurrent_calls_share_one_scoring_call():
    calls: list[list[str]] = []
    batcher = MicroBatcher(_scorer(calls))

    async def main():
        return await asyncio.gather(batcher(["a"]), batcher(["b", "c"]), batcher(["a"]))

    assert asyncio.run(main()) == [["score:a"], ["score:b", "score:c"], ["score:a"]]
    assert calls == [["a", "b", "c", "a"]] and batcher.batches == 1


def test_a_lone_call_is_scored_at_once_and_sequential_calls_are_not_merged():
    calls: list[list[str]] = []
    batcher = MicroBatcher(_scorer(calls))

    async def main():
        return [await batcher([c]) for c in "xyz"]

    assert asyncio.run(main()) == [["score:x"], ["score:y"], ["score:z"]]
    assert calls == [["x"], ["y"], ["z"]]


def test_batches_hold_at_most_max_ids_unless_one_call_has_more():
    calls: list[list[str]] = []
    batcher = MicroBatcher(_scorer(calls), max_ids=3)

    async def main():
        return await asyncio.gather(batcher(["a", "b"]), batcher(["c", "d"]), batcher(["e"]), batcher(list("fghij")))

    got = asyncio.run(main())
    assert got[3] == [f"score:{c}" for c in "fghij"]
    assert calls == [["a", "b"], ["c", "d", "e"], list("fghij")]


def test_an_error_reaches_every_call_of_its_batch_only():
    calls: list[list[str]] = []
    batcher = MicroBatcher(_scorer(calls), max_ids=2)

    async def main():
        return await asyncio.gather(batcher(["a"]), batcher(["boom"]), batcher(["c"]), return_exceptions=True)

    first, second, third = asyncio.run(main())
    assert isinstance(first, RuntimeError) and isinstance(second, RuntimeError)
    assert third == ["score:c"]


def test_a_cancelled_call_is_left_out():
    calls: list[list[str]] = []
    batcher = MicroBatcher(_scorer(calls))

    async def main():
        gone = asyncio.ensure_future(batcher(["gone"]))
        await asyncio.sleep(0)  # registered, not yet scored
        gone.cancel()
        return await batcher(["kept"])

    assert asyncio.run(main()) == ["score:kept"]
    assert calls == [["kept"]]

