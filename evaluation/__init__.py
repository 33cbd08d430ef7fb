"""ecrm evaluation: time-based backtests and comparisons against baselines (imports training/)."""
