"""Azure Resource Manager, the way the project reads it: strict ids, typed views of events and resources."""
