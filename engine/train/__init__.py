"""The training loop, its state, the feature cache, the optimizer and schedule."""
