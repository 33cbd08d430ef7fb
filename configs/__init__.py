"""ecrm configs package."""
