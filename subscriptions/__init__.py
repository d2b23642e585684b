"""Exact Online webhook subscriptions per division and topic, tracked in our database and reconciled."""
