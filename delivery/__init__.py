"""Changes to sinks: the outbox per sink and key, dispatch, dead letters, the SQL mirror and HTTP push, their tasks."""
