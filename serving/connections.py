"""Keep-alive connections spread over the server's workers (an ASGI middleware).

The workers share one listening socket, and a worker that wakes for a new connection accepts every
connection waiting at that moment. Clients that open their keep-alive connections together (a load
balancer's pool, a storefront's HTTP client at start-up) can therefore all land on one worker and stay
there, while the other workers idle. :class:`KeepAliveLimitMiddleware` asks clients to reconnect now and
then (``Connection: close`` on one response in ``every``, as nginx's ``keepalive_requests`` does per
connection): the reconnection is accepted by whichever worker gets to it first, which is the least busy
one, so connections drift to where there is CPU to serve them. A reconnection on loopback costs a
fraction of a millisecond, once per ``every`` requests.
"""

from __future__ import annotations

from itertools import count


class KeepAliveLimitMiddleware:
    """Adds ``Connection: close`` to every ``every``-th HTTP response of this worker (0 = never).

    The count is per worker process: with ``c`` connections on a worker, each of them is asked to reconnect
    about once per ``every`` of its own requests. Answers that close the connection anyway are left as they are.
    """

    def __init__(self, app, every: int | None = None) -> None:
        if every is None:
            from configs.settings import load_settings

            every = load_settings().serving.keepalive_requests
        if every < 0:
            raise ValueError(f"serving.keepalive_requests must be 0 (never close) or positive, got {every}")
        self.app = app
        self.every = int(every)
        self._responses = count(1)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.every == 0:
            await self.app(scope, receive, send)
            return

        async def closing_send(message):
            if message["type"] == "http.response.start" and next(self._responses) % self.every == 0:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)
