"""Writes submitted by connected systems: validated commands, kept by key, run once by the workers."""
