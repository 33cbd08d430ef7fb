"""ecrm features package."""
