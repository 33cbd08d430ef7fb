"""The serving contract: what the HTTP endpoints accept and return (also the batch output's rows).

Requests are strict (no silent coercion of ``false`` into an id); responses carry a per-id status so
one unknown customer never fails a whole request.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChurnRequest(_Strict):
    """``POST /churn`` body: the customers to score."""

    customer_ids: list[str] = Field(..., min_length=1, description="customer ids to score (max from config)")


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


class ErrorBody(BaseModel):
    """Every error answer: a message naming what is wrong."""

    error: str
    detail: str | None = None
