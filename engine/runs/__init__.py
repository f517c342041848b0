"""Run folders: what a run writes, its checkpoint file, the lock that keeps one process per folder."""
