"""Scoring of concurrent requests together (opportunistic micro-batching), without waiting for a batch.

Part of a one-customer ``/churn``'s CPU is per call rather than per customer (the online-store query,
the BG/NBD inputs, the calls into LightGBM and numpy), so customers scored together cost less each.
The endpoints run on the event loop, so while one
call is scoring, requests that arrive queue up; :class:`MicroBatcher` scores everything that is queued
at that point in one call and hands each request its own rows. A request alone is scored at once (the
flush is only deferred to the end of the current event-loop step), so a single client's latency does not
change; under concurrency, requests share the per-call cost. Each row's result is the same as when
scored alone: every model scores rows independently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

R = TypeVar("R")


class MicroBatcher(Generic[R]):
    """``await batcher(ids)`` returns ``score(ids)``, computed together with the calls pending at the time.

    ``score`` maps a list of ids to one result per id, in order (it may raise: every request of that
    batch gets the exception). A batch holds at most ``max_ids`` ids, unless one request alone has more.
    """

    def __init__(self, score: Callable[[list[str]], list[R]], max_ids: int = 64) -> None:
        self._score = score
        self.max_ids = max_ids
        self._pending: list[tuple[Sequence[str], asyncio.Future]] = []
        self._scheduled = False
        self.batches = 0  # calls of ``score`` so far (for tests and metrics)

    async def __call__(self, ids: Sequence[str]) -> list[R]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((ids, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after the requests already runnable in this loop step
        return await future

    def _take(self) -> list[tuple[Sequence[str], asyncio.Future]]:
        taken, n = [], 0
        while self._pending and (not taken or n + len(self._pending[0][0]) <= self.max_ids):
            item = self._pending.pop(0)
            n += len(item[0])
            if not item[1].cancelled():  # the client went away
                taken.append(item)
        return taken

    def _flush(self) -> None:
        self._scheduled = False
        batch = self._take()
        if self._pending:  # more than max_ids were waiting: the rest goes next
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        if not batch:
            return
        ids = [c for item_ids, _ in batch for c in item_ids]
        self.batches += 1
        try:
            results = self._score(ids)
        except Exception as exc:  # noqa: BLE001 - each request answers it (e.g. 503 for a store outage)
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for item_ids, future in batch:
            future.set_result(results[start:start + len(item_ids)])
            start += len(item_ids)
