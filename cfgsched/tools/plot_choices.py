"""What ``plot`` accepts and writes, numpy-free: the CLI's option choices and output
checks read these at start-up (``cfgsched --help`` must not import numpy)."""

from __future__ import annotations

from pathlib import Path

from cfgsched.errors import CfgError

MAX_POSITION = 1 << 62  # largest --from/--to
X_UNITS = ("batches", "images", "epochs", "steps")
#: ``--vs`` values that overlay a framework's own built-in schedule fitted to darknet's.
APPROXIMATIONS = ("mmengine", "ultralytics-hyp")
#: Image formats and data formats by file extension.
FORMATS = ("png", "svg", "pdf")
DATA_FORMATS = ("csv", "json")
#: Schema of a series (the CSV's first comment line, the JSON's "schema").
SERIES_SCHEMA = "cfgsched-lr-series/1"
#: Bytes that mark an image or a series as cfgsched's (``plot`` replaces it without
#: ``--force``).
OUTPUT_MARKERS = (
    b"tEXtSoftware\x00cfgsched",
    b"<dc:title>cfgsched</dc:title>",
    b"/Creator (cfgsched)",
    b"# " + SERIES_SCHEMA.encode(),
    b'{"schema": "' + SERIES_SCHEMA.encode(),
)
#: Name of the event file ``--tensorboard`` writes (one fixed name: a re-run replaces it).
TENSORBOARD_FILE = "events.out.tfevents.0000000000.cfgsched-lr"


def output_format(path: str) -> str:
    """The output format for ``path`` from its extension (png, svg, pdf, csv or json)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS + DATA_FORMATS:
        why = "unknown output format: use .png, .svg, .pdf, .csv or .json (or --format)"
        raise CfgError(path, None, None, why)
    return ext
