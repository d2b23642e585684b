"""The `exact-pipeline` command: the composition root that mounts every package's commands."""
