"""Celery workers: fetch changed records from Exact, deliver them to sinks, delta-sync as a safety net."""
