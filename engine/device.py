"""Where training runs: the devices this machine has, the one "auto" picks, and the precision used there."""

from __future__ import annotations

import os
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


def ram_bytes() -> int | None:
    """The machine's physical memory (None where the OS cannot be asked)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        pass
    try:  # pragma: no cover - Windows only
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("avail", ctypes.c_ulonglong), ("page_total", ctypes.c_ulonglong),
                        ("page_avail", ctypes.c_ulonglong), ("virtual_total", ctypes.c_ulonglong),
                        ("virtual_avail", ctypes.c_ulonglong), ("extended", ctypes.c_ulonglong)]

        status = _Status(length=ctypes.sizeof(_Status))
        return int(status.total) if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)) else None
    except (AttributeError, OSError):
        return None


def training_memory(name: str) -> tuple[str, int | None]:
    """(what, bytes) of the memory a model trained on device `name` lives in: the GPU's for CUDA, else the
    machine's RAM (MPS shares it); None where it cannot be asked."""
    kind = pick_device(name).type if name == "auto" else name
    if kind == "cuda" and torch.cuda.is_available():
        return f"GPU memory ({torch.cuda.get_device_name(0)})", torch.cuda.get_device_properties(0).total_memory
    return "RAM", ram_bytes()
