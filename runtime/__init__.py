"""Shared runtime plumbing: settings, database, Redis, token encryption, logging and the CLI."""
