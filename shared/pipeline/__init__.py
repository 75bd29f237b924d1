"""The request's stages, from snapshots to a pool: the stage machine, ARM event routing, stuck-request reconciliation."""
