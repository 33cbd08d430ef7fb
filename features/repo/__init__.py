"""The Feast feature repository: entities, sources, feature views and feature services of ecrm.

The SQL that computes each feature view's snapshots lives next to its definition
(``*_features.sql``). Sources point at parquet snapshots inside a workspace, so the objects are built
by :func:`features.repo.definitions.build_definitions` for a given workspace.
"""
