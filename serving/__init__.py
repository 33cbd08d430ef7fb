"""ecrm serving package."""
