"""Azure Resource Manager, the way the project reads it: strict ids, one call policy, typed event and pool views."""
