"""Where training runs: the devices this machine has, the one "auto" picks, and the precision used there."""

from __future__ import annotations

from functools import lru_cache

import torch

from engine.errors import ProjectError
from engine.project import DEVICES


def _has_mps() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


@lru_cache(maxsize=1)
def available_devices() -> dict[str, str | None]:
    """Device key -> what it is on this machine, or None where it is missing (asked once per process)."""
    cuda, mps = torch.cuda.is_available(), _has_mps()
    gpu = torch.cuda.get_device_name(0) if cuda else None
    best = f"CUDA: {gpu}" if cuda else ("MPS" if mps else "CPU")
    return {"auto": f"Auto ({best})", "cpu": "CPU", "cuda": f"CUDA — {gpu}" if cuda else None,
            "mps": "MPS (Apple GPU)" if mps else None}


def device_problem(name: str) -> ProjectError | None:
    """Why `train.device` cannot be used here (None when it can)."""
    if name in DEVICES and available_devices()[name] is None:
        return ProjectError("train.device", f"{name.upper()} is not available on this machine; use \"auto\" or "
                                            "\"cpu\"")
    return None


def pick_device(name: str) -> torch.device:
    """ "auto" means cuda, else mps, else cpu; asking for a device this machine lacks is a `ProjectError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _has_mps() else "cpu")
    problem = device_problem(name)
    if problem is not None:
        raise problem
    return torch.device(name)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 on CUDA where supported, else fp16 (with a GradScaler); no autocast on CPU or MPS."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
