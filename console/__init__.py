"""The operator's web console: `exact-pipeline console`, server-rendered pages over status, dead letters, commands."""
