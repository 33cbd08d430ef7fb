"""The serving contract: what the HTTP endpoints accept and return (also the batch output's rows).

Requests are strict (no silent coercion of ``false`` into an id); responses carry a per-id status so
one unknown customer never fails a whole request.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CustomerIdsRequest(_Strict):
    """``POST /churn``, ``/next_purchase`` and ``/segment`` body: the customers to score."""

    customer_ids: list[str] = Field(..., min_length=1, description="customer ids to score (max from config)")


ChurnRequest = CustomerIdsRequest


class Driver(BaseModel):
    """One reason a customer's churn risk is high, in words a retention team reads."""

    feature: str
    value: float | None
    impact: float = Field(description="contribution to the churn logit (higher = more risk)")
    text: str


class ChurnScore(BaseModel):
    """The churn score of one customer, or why there is none."""

    customer_id: str
    status: Literal["ok", "unknown_customer"]
    churn_probability: float | None = None
    risk_band: str | None = None
    top_drivers: list[Driver] = Field(default_factory=list)


class ModelInfo(BaseModel):
    """Which registered model version answered."""

    name: str
    version: int
    alias: str


class ChurnResponse(BaseModel):
    """``POST /churn`` answer: one result per requested id, in request order."""

    model: ModelInfo
    features_as_of: str | None
    results: list[ChurnScore]


class NextPurchaseScore(BaseModel):
    """Next purchase and value forecasts of one customer (also a row of ``next_purchase.parquet``)."""

    customer_id: str
    status: Literal["ok", "unknown_customer"]
    p_purchase_30d: float | None = Field(None, description="probability of at least one order in the next 30 days (at most p_purchase_horizon)")
    p_purchase_horizon: float | None = Field(None, description="probability of at least one order in the churn horizon (1 - churn probability)")
    expected_purchases: float | None = Field(None, description="expected number of orders in the churn horizon")
    expected_spend: float | None = Field(None, description="expected spend in the churn horizon")
    expected_next_purchase_date: str | None = Field(None, description="date by which the next order is more likely than not; null if not within a year")
    clv_12m: float | None = Field(None, description="expected spend in the next 12 months (undiscounted)")


class NextPurchaseResponse(BaseModel):
    """``POST /next_purchase`` answer: one result per requested id, in request order."""

    model: ModelInfo
    features_as_of: str | None
    results: list[NextPurchaseScore]


class SegmentScore(BaseModel):
    """Segments of one customer (also a row of ``segments.parquet``)."""

    customer_id: str
    status: Literal["ok", "unknown_customer"]
    recency_score: int | None = Field(None, description="RFM recency score 1..5 (5 = most recent)")
    frequency_score: int | None = None
    monetary_score: int | None = None
    rfm_segment: str | None = Field(None, description="named RFM segment, e.g. Champions, At risk, Hibernating")
    lifecycle_stage: str | None = Field(None, description="new, repeat, loyal, lapsing or churned")
    value_tier: str | None = Field(None, description="customer value pyramid tier on predicted 12-month value")
    abc_class: str | None = Field(None, description="A/B/C by cumulative share of predicted value (80/15/5)")
    cluster: int | None = Field(None, description="behavioural cluster (see the segment model's run in MLflow)")


class SegmentResponse(BaseModel):
    """``POST /segment`` answer: one result per requested id, in request order."""

    model: ModelInfo
    features_as_of: str | None
    results: list[SegmentScore]


class FieldError(BaseModel):
    """One problem with a request's body or parameters."""

    loc: list[str | int] = Field(description="where: body or parameter name, then field names and list positions")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer (any 4xx or 5xx): a code and a message naming what is wrong."""

    error: str = Field(description="short code, e.g. invalid_request, unauthorized, unknown_customer, "
                                   "payload_too_large, online_store_unavailable")
    detail: str = Field(description="what is wrong, in words")
    errors: list[FieldError] | None = Field(None, description="an invalid body or invalid parameters: each problem")


class RecommendRequest(_Strict):
    """``POST /recommend`` body: one customer (known or not) and the storefront's filters."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    customer_id: str | None = Field(None, description="null or an unknown id: trending items, or items bought "
                                                      "with context_product_ids")
    k: int = Field(10, ge=1, description="number of items (max from config)")
    list_name: Literal["all", "discovery"] = Field("all", alias="list", description="all (may repeat purchases) or "
                                                   "discovery (never bought by this customer)")
    exclude_purchased: bool = Field(False, description="drop items the customer bought before")
    exclude_product_ids: list[str] = Field(default_factory=list, description="never return these")
    categories: list[str] | None = Field(None, description="only items in these categories")
    context_product_ids: list[str] = Field(default_factory=list, description="the basket or the viewed page: "
                                                                            "never returned, used for unknown customers")
    sold_within_days: float | None = Field(None, gt=0, description="only items someone bought in these last days")


class RecommendedItem(BaseModel):
    """One recommended product with its score and the reason it is recommended."""

    rank: int
    product_id: str
    name: str | None = None
    category: str | None = None
    score: float
    reason: str


class RecommendResponse(BaseModel):
    """``POST /recommend`` answer."""

    model: ModelInfo
    lists_as_of: str
    customer_id: str | None
    customer_known: bool
    source: Literal["personal", "history", "bought_together", "trending"]
    unknown_product_ids: list[str] = Field(default_factory=list, description="given product ids the model does not "
                                                                             "know (ignored)")
    items: list[RecommendedItem]


class SimilarItemsRequest(_Strict):
    """``POST /similar_items`` body."""

    product_id: str
    k: int = Field(10, ge=1)


class BoughtTogetherRequest(_Strict):
    """``POST /bought_together`` body."""

    product_ids: list[str] = Field(..., min_length=1)
    k: int = Field(10, ge=1)


class ItemsResponse(BaseModel):
    """``POST /similar_items`` and ``/bought_together`` answer; ``source`` is ``trending`` when the given
    products are unknown or have no neighbours."""

    model: ModelInfo
    lists_as_of: str
    source: Literal["similar_items", "bought_together", "trending"]
    unknown_product_ids: list[str] = Field(default_factory=list)
    items: list[RecommendedItem]


class AtRiskRequest(_Strict):
    """``POST /at_risk`` body: the retention team's filters and the page wanted."""

    min_probability: float = Field(0.5, ge=0, le=1, description="churn probability at or above which a customer is listed")
    segments: list[str] | None = Field(None, description="RFM segments, e.g. ['At risk', 'Champions']")
    value_tiers: list[str] | None = Field(None, description="value tiers: top, big, medium, small")
    lifecycle_stages: list[str] | None = Field(None, description="new, repeat, loyal, lapsing, churned")
    countries: list[str] | None = None
    page: int = Field(1, ge=1)
    page_size: int = Field(100, ge=1, le=1000)
