"""The pool guard: rules that decide (no I/O) and the sweep and per-pool checks that act."""
