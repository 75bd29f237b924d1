"""Benchmarks on the local Azure emulator: ``python -m bench``."""
