"""Keeping in-use images alive: lineage reads, locks and usage records, and the alerts when protection fails."""
