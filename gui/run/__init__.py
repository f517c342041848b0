"""A training run seen from the window: the worker in its thread, the controller, the end-of-run card."""
