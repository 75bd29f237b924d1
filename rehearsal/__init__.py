"""The offline rehearsal: the registered functions, run on the local Azure emulator."""
