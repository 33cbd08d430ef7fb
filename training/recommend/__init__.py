"""Product recommendations: baselines, the two-stage (candidates + lambdarank) recommender, metrics.

See :mod:`training.recommend.recommender` for the model, :mod:`training.recommend.baselines` for the
baselines, :mod:`training.recommend.metrics` for evaluation.
"""

from training.recommend.baselines import (ALSRecommender, EASERecommender, ItemKNNRecommender, OwnHistoryRecommender,
                                          PopularityRecommender, choose_als_params, choose_ease_lambda)
from training.recommend.candidates import CandidateConfig
from training.recommend.data import holdout_items, interactions
from training.recommend.metrics import (catalog_coverage, discovery_truth, holdout_truth, paired_bootstrap_diff,
                                        per_customer_metrics, ranking_metrics)
from training.recommend.recommender import Recommendation, Recommendations, Recommender

__all__ = [
    "ALSRecommender", "CandidateConfig", "EASERecommender", "ItemKNNRecommender", "OwnHistoryRecommender",
    "PopularityRecommender", "Recommendation", "Recommendations", "Recommender", "catalog_coverage",
    "choose_als_params", "choose_ease_lambda", "discovery_truth", "holdout_items", "holdout_truth", "interactions",
    "paired_bootstrap_diff", "per_customer_metrics", "ranking_metrics",
]
