"""The webhook receiver: verify, deduplicate, hand on durably, answer fast."""
