"""Thaw's engine: pure PyTorch models, freezing, heads, data and training. Never imports Qt.

Thaw works offline: huggingface_hub (which timm uses) reads HF_HUB_OFFLINE once, when it is imported, so it is
set here, before anything can import it (a person may still set it to 0 themselves).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
