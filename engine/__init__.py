"""Thaw's engine: pure PyTorch models, freezing, heads, data and training. Never imports Qt."""
