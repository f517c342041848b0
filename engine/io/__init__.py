"""The engine's contact with the disk: crash-safe writes, weight files, where Thaw keeps its own files."""
