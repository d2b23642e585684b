"""Webhook events to records: events, coalescing per lane, fetch walks, cursors, the delta sync and their tasks."""
