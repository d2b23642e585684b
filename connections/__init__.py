"""Connected Exact users: their tables, encrypted tokens, the client factory, `connect`, `divisions`, `rotate-key`."""
