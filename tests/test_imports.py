"""`import cfgsched` and the commands that do not need them stay free of torch/matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.golden import ROOT

HEAVY = ("torch", "matplotlib")


def imported_modules(code: str) -> set[str]:
    """Top-level modules that ``python -X importtime -c code`` imported (it must exit 0/1)."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr[
        -2000:
    ]
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_import_cfgsched_is_light() -> None:
    mods = imported_modules("import cfgsched")
    assert "cfgsched" in mods
    assert not mods & set(HEAVY), mods & set(HEAVY)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["convert", "sample_cfgs/yolov4.cfg"],
        ["explain", "sample_cfgs/yolov4.cfg"],
        ["lint", "sample_cfgs/yolov4.cfg"],
        ["adjust", "sample_cfgs/yolov4.cfg", "--gpus", "4"],
    ],
)
def test_light_commands_do_not_import_torch_or_matplotlib(args: list[str]) -> None:
    code = "import sys\nfrom cfgsched.cli import main\n"
    code += f"sys.argv = ['cfgsched', *{args!r}]\nmain()\n"
    mods = imported_modules(code)
    assert "cfgsched" in mods
    assert not mods & set(HEAVY), f"{args}: imported {mods & set(HEAVY)}"


def test_dir_shows_the_public_names_and_no_import_helpers() -> None:
    """``dir(cfgsched)`` (and tab completion) lists the lazy exports, not the module's
    own imports."""
    import cfgsched

    names = set(dir(cfgsched))
    assert {"load", "parse", "DarknetLR", "build_optimizer", "NetSchedule"} <= names
    assert set(cfgsched.__all__) <= names
    assert not {"Any", "TYPE_CHECKING", "importlib", "annotations"} & names
