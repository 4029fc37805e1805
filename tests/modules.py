"""Running generated modules in the test process with cfgsched blocked.

:func:`cfgsched_blocked` hides every loaded ``cfgsched`` module and makes any import of
cfgsched raise, so a generated module that leans on the library, even lazily inside a
function, fails while it is loaded and run inside the block.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch


class _NoCfgsched(importlib.abc.MetaPathFinder):
    """Refuses ``cfgsched`` and its submodules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "cfgsched" or fullname.startswith("cfgsched."):
            raise ImportError(f"a generated module imported {fullname}")
        return None


@contextlib.contextmanager
def cfgsched_blocked() -> Iterator[None]:
    """Within the block ``import cfgsched`` (any submodule too) raises ImportError."""
    hidden = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == "cfgsched" or name.startswith("cfgsched.")
    }
    finder = _NoCfgsched()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(hidden)


def load(text: str, name: str) -> types.ModuleType:
    """Execute generated source as module ``name`` (registered, so its classes pickle)."""
    module = types.ModuleType(name)
    module.__file__ = f"<generated {name}>"
    sys.modules[name] = module
    exec(compile(text, f"{name}.py", "exec"), module.__dict__)  # our own generated code
    return module


def sgd(module: types.ModuleType, lrs: Sequence[float] = ()) -> torch.optim.SGD:
    """A real SGD on one parameter per group: lr = the module's LEARNING_RATE (and ``lrs``)."""
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
        for lr in (module.LEARNING_RATE, *lrs)
    ]
    return torch.optim.SGD(groups, lr=module.LEARNING_RATE, momentum=0.9)


def stepped(
    module: types.ModuleType, n: int, *, last_epoch: int | None = None, group: int = 0
) -> list[float]:
    """The lr a training loop sees at its next ``n`` optimizer steps (optimizer.step(),
    then scheduler.step(), as torch wants) with ``build_scheduler(opt[, last_epoch])``."""
    opt = sgd(module)
    if last_epoch is None:
        sched = module.build_scheduler(opt)
    else:
        sched = module.build_scheduler(opt, last_epoch)
    out = []
    for _ in range(n):
        out.append(float(opt.param_groups[group]["lr"]))
        opt.step()
        sched.step()
    return out


#: The ruff next to the interpreter (the project venv's).
RUFF = Path(sys.executable).parent / "ruff"


def assert_ruff_clean(texts: Sequence[str], folder: Path) -> None:
    """A default ``ruff format`` changes none of ``texts`` and ``ruff check`` (pyflakes,
    pycodestyle, bugbear, pyupgrade, isort) finds nothing in them."""
    files = []
    for n, text in enumerate(texts):
        (folder / f"m{n}.py").write_text(text)
        files.append(str(folder / f"m{n}.py"))
    fmt = subprocess.run(
        [str(RUFF), "format", "--isolated", "--diff", *files],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    check = subprocess.run(
        [str(RUFF), "check", "--isolated", "--select", "F,E,W,B,UP,I", *files],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
