"""Feast objects of ecrm: the one place that says which features exist and what they mean.

Every feature is computed "as of" a snapshot time t from events strictly before t (see the SQL next to
this file); a snapshot row's ``event_timestamp`` is t. Feast's point-in-time join then returns, for an
entity row at time t, the snapshot taken at t (or the latest one before it).

Each feature view has an online twin, ``<view>_online``: the same features as one vector per entity (a
``values`` array in the view's feature order, :func:`online_view_features`). The per-feature views serve
the offline store (training, backtests); the service reads the twins, so an online lookup is one row per
entity and view rather than one per feature (Feast's online stores keep a row, or a hash field, per
feature), and loading the online store writes as many rows as there are entities. The twins are filled
from the snapshots by ``features.store.materialize_as_of`` through a push source.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float64

CUSTOMER = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A shop customer (pseudonymous id)",
)
PRODUCT = Entity(
    name="product",
    join_keys=["product_id"],
    value_type=ValueType.STRING,
    description="A catalog product",
)

# name -> description. Windows are the days before the snapshot time t; money is net of returns.
CUSTOMER_ORDER_FEATURES: dict[str, str] = {
    "recency_days": "days since the last order",
    "tenure_days": "days since the first order",
    "frequency_30d": "orders in the last 30 days",
    "frequency_90d": "orders in the last 90 days",
    "frequency_365d": "orders in the last 365 days",
    "frequency_lifetime": "orders ever",
    "monetary_30d": "net spend in the last 30 days",
    "monetary_90d": "net spend in the last 90 days",
    "monetary_365d": "net spend in the last 365 days",
    "monetary_lifetime": "net spend ever",
    "repeat_purchase_days": "distinct purchase days after the first (BG/NBD x)",
    "active_span_days": "days between first and last order (BG/NBD t_x)",
    "ipi_mean_days": "mean days between consecutive orders",
    "ipi_std_days": "spread (std) of days between consecutive orders",
    "last_gap_days": "days between the last two orders",
    "recency_ipi_ratio": "days since last order / the customer's mean inter-purchase interval",
    "frequency_prev_90d": "orders 90-180 days ago",
    "frequency_trend_90d": "(orders last 90 days + 1) / (orders 90-180 days ago + 1)",
    "monetary_trend_90d": "(sales last 90 days + 1) / (sales 90-180 days ago + 1)",
    "frequency_ly_next_90d": "orders in the 90 days that followed t one year earlier (same season last year)",
    "monetary_ly_next_90d": "sales in the 90 days that followed t one year earlier",
    "frequency_ly_90d": "orders in the 90 days before t one year earlier",
    "orders_per_30d": "lifetime orders per 30 days of tenure",
    "avg_units_per_order": "mean units per order (basket size)",
    "avg_lines_per_order": "mean order lines per order",
    "avg_order_value_365d": "mean order value over the last 365 days (basket value)",
    "avg_order_value_lifetime": "mean order value ever",
    "max_order_value": "largest order value ever",
    "distinct_products_365d": "distinct products bought in the last 365 days",
    "distinct_categories_365d": "distinct categories bought in the last 365 days (category diversity)",
    "returns_365d": "return orders in the last 365 days",
    "return_rate_365d": "returned value / sales value over the last 365 days",
    "price_index_365d": "mean price paid / the product's median price, last 365 days (price sensitivity)",
    "discount_share_365d": "share of lines bought 5%+ below the product's median price, last 365 days",
}
CUSTOMER_SESSION_FEATURES: dict[str, str] = {
    "sessions_30d": "browsing sessions in the last 30 days",
    "sessions_90d": "browsing sessions in the last 90 days",
    "views_30d": "product views in the last 30 days",
    "views_90d": "product views in the last 90 days",
    "add_to_cart_90d": "add-to-cart events in the last 90 days",
    "searches_90d": "searches in the last 90 days",
    "cart_abandonment_90d": "share of sessions with a cart but no purchase, last 90 days",
    "view_to_purchase_90d": "purchase events / product views, last 90 days",
    "days_since_last_session": "days since the last browsing event",
}
PRODUCT_FEATURES: dict[str, str] = {
    "orders_30d": "orders containing the product in the last 30 days",
    "orders_90d": "orders containing the product in the last 90 days",
    "orders_prev_30d": "orders containing the product 30-60 days ago",
    "trend_30d": "(orders last 30 days + 1) / (orders 30-60 days ago + 1)",
    "units_90d": "units sold in the last 90 days",
    "buyers_90d": "distinct customers who bought it in the last 90 days",
    "buyers_365d": "distinct customers who bought it in the last 365 days",
    "repeat_purchase_rate_365d": "share of last-365-day buyers who bought it in 2+ orders",
    "price_median_365d": "median sale price over the last 365 days",
    "days_since_last_sold": "days since it was last sold",
}

# Feature view name -> (entity, features, SQL file computing its snapshots, canonical tables it needs)
VIEW_SPECS: dict[str, tuple[Entity, dict[str, str], str, tuple[str, ...]]] = {
    "customer_orders": (CUSTOMER, CUSTOMER_ORDER_FEATURES, "customer_order_features.sql", ("orders",)),
    "customer_sessions": (CUSTOMER, CUSTOMER_SESSION_FEATURES, "customer_session_features.sql", ("sessions",)),
    "product_stats": (PRODUCT, PRODUCT_FEATURES, "product_features.sql", ("orders",)),
}
SQL_DIR = Path(__file__).parent

# Feature services: the feature views a model may read. ``churn`` reads customer views only.
SERVICE_VIEWS: dict[str, tuple[str, ...]] = {
    "customer_features_v1": ("customer_orders", "customer_sessions"),
    "product_features_v1": ("product_stats",),
}


ONLINE_SUFFIX = "_online"
ONLINE_VALUES = "values"  # the online twin's one field: the view's features in order


def online_view(view: str) -> str:
    """The name of a feature view's online twin (its features as one vector per entity)."""
    return view + ONLINE_SUFFIX


def online_view_features(view: str) -> list[str]:
    """The features of ``view`` in the order its online twin's ``values`` vector holds them."""
    return list(VIEW_SPECS[view][1])


def snapshot_path(features_dir: Path, view: str) -> Path:
    """Parquet file holding every snapshot of one feature view."""
    return Path(features_dir).resolve() / f"{view}.parquet"


def snapshot_source(features_dir: Path, view: str, offline_store: str = "duckdb"):
    """The Feast data source of one view's snapshot parquet file, for the configured offline store.

    DuckDB reads a ``FileSource``; Feast's Spark offline store only accepts a ``SparkSource``. Both point
    at the same file, so the features are the same whichever engine reads them.
    """
    path = str(snapshot_path(features_dir, view))
    if offline_store == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource(name=f"{view}_snapshots", path=path, file_format="parquet",
                           timestamp_field="event_timestamp")
    return FileSource(name=f"{view}_snapshots", path=path, timestamp_field="event_timestamp")


def build_definitions(features_dir: Path, views: list[str] | None = None, offline_store: str = "duckdb") -> list:
    """Entities, sources, feature views and services over the snapshots in ``features_dir``.

    ``views`` restricts to the feature views whose snapshots exist (a shop without sessions has no
    ``customer_sessions`` view); ``offline_store`` (``duckdb`` or ``spark``) picks the source type.
    The per-feature views are offline only; each has an online twin (see the module docstring) whose push
    source names the same snapshots as its batch source.
    """
    views = list(VIEW_SPECS) if views is None else views
    objects: list = [CUSTOMER, PRODUCT]
    built: dict[str, FeatureView] = {}
    for name in views:
        entity, feats, _sql, _needs = VIEW_SPECS[name]
        source = snapshot_source(features_dir, name, offline_store)
        objects.append(FeatureView(
            name=online_view(name),
            entities=[entity],
            ttl=timedelta(0),
            schema=[Field(name=ONLINE_VALUES, dtype=Array(Float64),
                          description="the features of " + name + " in order: " + ", ".join(feats))],
            source=PushSource(name=f"{name}_push", batch_source=source),
            online=True,
            tags={"features": ",".join(feats)},
            description=f"{name} features as one vector per entity, for the online store",
        ))
        built[name] = FeatureView(
            name=name,
            entities=[entity],
            # ttl 0 = unlimited lookback in Feast: a request at t gets the latest snapshot at or before t.
            # Training asks exactly at snapshot times; a customer present in an earlier snapshot is in
            # every later one (they had an order before it), so no stale row is ever picked for them.
            ttl=timedelta(0),
            schema=[Field(name=f, dtype=Float64, description=d) for f, d in feats.items()],
            source=source,
            online=False,
            description=f"{name} features as of each snapshot time, from events strictly before it",
        )
        objects.append(built[name])
    for service, service_views in SERVICE_VIEWS.items():
        members = [built[v] for v in service_views if v in built]
        if members:
            objects.append(FeatureService(name=service, features=members))
    return objects
