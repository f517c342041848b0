"""The built-in digits demo: the source model's build step and the two transfer targets."""
