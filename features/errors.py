"""Errors of the feature stores (a light module: the service's supervisor imports it without Feast)."""


class OnlineStoreUnavailable(RuntimeError):
    """The online store did not answer (server down, file unreadable); the message says why."""
