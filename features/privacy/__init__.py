"""Customer-data privacy: pseudonymous customer ids, the erasure log, ``ecrm forget`` and retention.

- :mod:`features.privacy.pseudonyms`: keyed HMAC-SHA256 pseudonyms of customer ids (key from the environment).
- :mod:`features.privacy.erasure_log`: the workspace's record of forgotten customers (salted id hashes, UTC times).
- :mod:`features.privacy.loading`: what a loader does with a raw file before validation: drop columns outside
  the data contract, skip forgotten customers, pseudonymize ids.
- :mod:`features.privacy.scrub`: remove customers from one file (parquet, CSV, log, pickled recommender).
- :mod:`features.privacy.online`: remove customers from the Feast online store.
- :mod:`features.privacy.forget`: ``ecrm forget`` over a whole workspace.
- :mod:`features.privacy.retention`: ``ecrm data purge-expired``.
"""
