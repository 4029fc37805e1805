"""cfgsched: darknet .cfg learning-rate schedules as exactly equivalent PyTorch schedulers
(importing it is cheap: numpy, torch and matplotlib come with the names that need them)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cfgsched.errors import CfgError, CfgWarning, NotExactError, WeightsError
from cfgsched.schedule import FORKS, LayerLR, NetSchedule, Policy

__version__ = "0.1.0"

# name -> module that defines it; loaded on first access (PEP 562).
_LAZY: dict[str, str] = {
    "parse": "cfgsched.reader.parser",
    "load": "cfgsched.reader.parser",
    "darknet_lr": "cfgsched.oracle",
    "darknet_lr_scalar": "cfgsched.oracle",
    "multigpu_trace": "cfgsched.multigpu",
    "MultiGpuTrace": "cfgsched.multigpu",
    "advised_schedule": "cfgsched.run",
    "read_weights_header": "cfgsched.weights",
    "WeightsHeader": "cfgsched.weights",
    "DarknetLR": "cfgsched.adapters.darknet_lr",
    "native_scheduler": "cfgsched.adapters.native",
    "build_optimizer": "cfgsched.adapters.optim",
}

__all__ = [
    "FORKS",
    "CfgError",
    "CfgWarning",
    "LayerLR",
    "NetSchedule",
    "NotExactError",
    "Policy",
    "WeightsError",
    "__version__",
    *_LAZY,
]

if TYPE_CHECKING:
    from cfgsched.adapters.darknet_lr import DarknetLR
    from cfgsched.adapters.native import native_scheduler
    from cfgsched.adapters.optim import build_optimizer
    from cfgsched.multigpu import MultiGpuTrace, multigpu_trace
    from cfgsched.oracle import darknet_lr, darknet_lr_scalar
    from cfgsched.reader.parser import load, parse
    from cfgsched.run import advised_schedule
    from cfgsched.weights import WeightsHeader, read_weights_header


def __dir__() -> list[str]:
    """The public names, lazy ones included (not this module's own imports)."""
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cfgsched' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
