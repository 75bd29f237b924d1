"""Intake of pool requests: parse, validate, authorise, check the source, record, start the pipeline."""
