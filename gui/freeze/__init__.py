"""The layer checklist: a Qt adapter over the engine's checklist, the panel around it, the unfreezing schedule's timeline."""
