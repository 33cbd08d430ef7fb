"""ecrm training package."""
