"""ecrm cli package."""
