"""``--format json``: the schedule, the options and the derived translation as data."""

from __future__ import annotations

import json
from typing import Any

from cfgsched.codegen.python import record
from cfgsched.options import Options
from cfgsched.run import translate
from cfgsched.schedule import NetSchedule

#: Schema name of the JSON format.
JSON_SCHEMA = "cfgsched-translation/1"


def json_document(schedule: NetSchedule, options: Options, *, style: str) -> str:
    """Schema :data:`JSON_SCHEMA`: the module record's keys (``options`` is
    :meth:`Options.to_record`), ``translation`` (what the options mean for this cfg) and
    ``schedule`` (the cfg's own, ``cfgsched-schedule/1``). NaN and infinities are the
    strings "nan", "inf" and "-inf"."""
    t = translate(schedule, options)
    if style == "native":  # the same refusal as the module (NotExactError)
        from cfgsched.codegen.python import native_plan_for

        native_plan_for(schedule, options, t)
    doc = {
        **record(schedule, options, "json", style),
        "schema": JSON_SCHEMA,
        "translation": {
            "images_per_iteration": t.images_per_iteration,
            "images_per_step": None if t.trace else t.images_per_step,
            "step_to_batch": (
                "gpu0_trace"
                if t.trace
                else "b = (i + 1) * images_per_step // images_per_iteration"
            ),
            "base_learning_rate": t.params.lr,
            "flush": t.flush,
            "resume_step": t.start,
        },
        "schedule": schedule.to_dict(),
    }
    return json.dumps(_json_safe(doc), indent=2, allow_nan=False) + "\n"


def _json_safe(x: Any) -> Any:
    """``x`` with every non-finite float as the string :func:`json_float` gives."""
    from cfgsched.tools.text import json_float

    if isinstance(x, float):
        return json_float(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x
