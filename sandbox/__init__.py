"""A local Exact Online emulator that reproduces production behaviour and its quirks."""
