"""The layer checklist: a Qt adapter over the engine's checklist, the panel around it, the freeze strip."""
