"""The typed data every capability reads: a pool request's wire format, and the resources it plans."""
