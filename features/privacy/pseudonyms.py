"""Keyed pseudonyms of customer ids: HMAC-SHA256 of the id under a secret key, as truncated hex.

The key is read from the environment (``ECRM_PSEUDONYM_KEY``) and never written anywhere. The same key
always gives the same pseudonym, so repeated loads of a shop agree; without the key a pseudonym cannot be
traced back to the id, nor an id turned into its pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

import pandas as pd

KEY_ENV = "ECRM_PSEUDONYM_KEY"
MIN_KEY_CHARS = 16
PSEUDONYM_HEX_CHARS = 16  # 64 bits: a collision among a million customers has odds of about 3 in 100 million


class PrivacyError(ValueError):
    """A privacy setting cannot be applied (missing key, unknown customer, ...); the message says what to do."""


def pseudonym_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymization key from ``ECRM_PSEUDONYM_KEY``; :class:`PrivacyError` when missing or too short."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if not value:
        raise PrivacyError(f"privacy.pseudonymize_customer_ids is true but {KEY_ENV} is not set: set it to a secret "
                           f"of at least {MIN_KEY_CHARS} characters and keep it (the same key gives the same pseudonyms)")
    if len(value) < MIN_KEY_CHARS:
        raise PrivacyError(f"{KEY_ENV} is {len(value)} characters long; use a secret of at least {MIN_KEY_CHARS}")
    return value.encode("utf-8")


def pseudonym(customer_id: str, key: bytes) -> str:
    """The pseudonym of one customer id: the first 16 hex digits of HMAC-SHA256(key, id)."""
    return hmac.new(key, str(customer_id).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def pseudonyms(customer_ids: Iterable[str], key: bytes) -> list[str]:
    """Pseudonyms of several ids, in order."""
    return [pseudonym(c, key) for c in customer_ids]


def pseudonymize_series(ids: pd.Series, key: bytes, *, source: str = "customer_id") -> pd.Series:
    """Pseudonyms of a column of ids (nulls stay null), computed once per distinct id.

    Raises :class:`PrivacyError` naming ``source`` if two different ids would get the same pseudonym.
    """
    known = ids.dropna().astype(str)
    distinct = known.unique()
    table = dict(zip(distinct, pseudonyms(distinct, key)))
    if len(set(table.values())) != len(table):
        raise PrivacyError(f"{source}: two customer ids share a pseudonym (a 64-bit collision); use another key")
    out = pd.Series(pd.NA, index=ids.index, dtype="string")
    out[known.index] = known.map(table)
    return out
