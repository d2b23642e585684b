"""The webhook receiver: verify, deduplicate, hand on durably, answer fast.

Errors, each answered once by routes.py (a missing EXACT_WEBHOOK_SECRET is runtime's `MissingSetting`, at start):

    InvalidSignature     (signature.py)  missing, malformed or wrong HashCode      → 401
    TrackingUnavailable  (tracking.py)   a miss, and the database cannot be read  → 503, Exact retries
    HandoffFailed        (handoff.py)    Redis did not take the event             → 503, Exact retries
"""
