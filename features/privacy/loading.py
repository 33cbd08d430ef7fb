"""What a loader does with a raw file before validating it: data minimisation and customer privacy.

1. Only the columns the loader uses are kept: names, e-mails, addresses, phone numbers and every other
   column outside the data contract are dropped before anything is validated, so they reach neither the
   canonical tables nor the rejects file. The dropped column names are reported.
2. Rows of customers in the erasure log are skipped (counted, never written anywhere).
3. With ``privacy.pseudonymize_customer_ids`` the customer id column is replaced by keyed pseudonyms, so
   every later stage (tables, rejects, features, models, outputs) only ever sees pseudonyms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from configs.settings import PrivacySettings
from features.privacy.erasure_log import erased_hashes, erasure_hash, erasure_salt
from features.privacy.pseudonyms import pseudonym_key, pseudonymize_series
from features.storage import Workspace


@dataclass(frozen=True)
class LoadPrivacy:
    """What a load needs to know: the pseudonym key (None = keep ids) and the forgotten customers."""

    pseudonym_key: bytes | None = None
    erasure_salt: bytes | None = None
    erased: frozenset[str] = frozenset()

    @property
    def pseudonymize(self) -> bool:
        return self.pseudonym_key is not None


def load_privacy(settings: PrivacySettings, ws: Workspace) -> LoadPrivacy:
    """The privacy context of a load into ``ws``; raises PrivacyError when pseudonyms are on and the key is missing."""
    key = pseudonym_key() if settings.pseudonymize_customer_ids else None
    return LoadPrivacy(key, erasure_salt(ws), erased_hashes(ws))


@dataclass
class PreparedRaw:
    """A raw file after :func:`prepare_raw`: the rows and columns the loader may use, and what was left out."""

    raw: pd.DataFrame
    dropped_columns: list[str]
    erased_rows: int


def prepare_raw(raw: pd.DataFrame, used_columns: Sequence[str], customer_column: str,
                customer_ids: pd.Series, privacy: LoadPrivacy | None, *, source: str) -> PreparedRaw:
    """Keep ``used_columns``, skip forgotten customers, pseudonymize ``customer_column``.

    ``customer_ids`` are the cleaned ids of ``raw[customer_column]`` (as the loader would store them); the
    erasure log is matched against them. The index of ``raw`` is kept, so rejects keep their row numbers.
    """
    privacy = privacy or LoadPrivacy()
    used = [c for c in raw.columns if c in set(used_columns)]
    dropped = [str(c) for c in raw.columns if c not in set(used_columns)]
    out = raw[used]
    erased = pd.Series(False, index=raw.index)
    if privacy.erased and privacy.erasure_salt is not None:
        known = customer_ids.dropna().astype(str)
        distinct = known.unique()
        hit = {c for c in distinct if erasure_hash(c, privacy.erasure_salt) in privacy.erased}
        erased = customer_ids.astype("string").isin(hit).fillna(False).astype(bool)
    out = out.loc[~erased].copy()
    if privacy.pseudonymize:
        out[customer_column] = pseudonymize_series(customer_ids.loc[out.index], privacy.pseudonym_key,
                                                   source=f"{source}: column '{customer_column}'")
    return PreparedRaw(out, dropped, int(erased.sum()))
