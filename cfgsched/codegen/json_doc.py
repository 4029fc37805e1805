"""``--format json``: the schedule that matters for the policy, the options, what they
mean for this cfg and the LR at each boundary, as data."""

from __future__ import annotations

import json

from cfgsched.boundaries import boundaries
from cfgsched.codegen.python import native_build, record
from cfgsched.run import Run
from cfgsched.schedule import Policy
from cfgsched.text import plain

#: Schema name of the JSON format.
JSON_SCHEMA = "cfgsched-translation/2"
#: The [net] keys each policy reads besides learning_rate, burn_in and max_batches.
POLICY_KEYS = {
    Policy.STEP: ("step", "scale"),
    Policy.EXP: ("gamma",),
    Policy.POLY: ("power",),
    Policy.STEPS: ("steps", "scales"),
    Policy.SIG: ("gamma", "step"),
    Policy.RANDOM: ("power",),
    Policy.SGDR: ("learning_rate_min", "sgdr_cycle", "sgdr_mult"),
}


def json_document(t: Run, style: str) -> str:
    """Schema :data:`JSON_SCHEMA`: the module record, ``schedule``, ``translation`` and
    the LR at each ``boundaries`` step; non-finite floats as strings."""
    if style == "native":  # the same refusal as the module (NotExactError)
        native_build(t)
    s = t.given
    keys = ["policy_name", "learning_rate", "burn_in", "max_batches"]
    keys += POLICY_KEYS.get(s.policy, ())
    keys += ["power"] if s.burn_in > 0 and "power" not in keys else []
    keys += ["momentum", "decay", *(("b1", "b2", "eps") if s.adam else ())]
    keys += ["batch", "subdivisions", "images_per_iteration"]
    sched = {k.removesuffix("_name"): getattr(s, k) for k in keys}
    first = [t.start] if t.params.max_batches > 0 else []
    marks, _ = boundaries(s, limit=10_000)
    steps = sorted({*first, *(max(t.first_step(m.batch), t.start) for m in marks)})
    mapping = "b = (i + 1) * images_per_step // images_per_iteration"
    doc = {
        **record(t, "json", style),
        "schema": JSON_SCHEMA,
        "schedule": sched,
        "translation": {
            "images_per_step": None if t.trace else t.images_per_step,
            "step_to_batch": "gpu0_trace" if t.trace else mapping,
            "base_learning_rate": t.params.lr,
            "flush": t.flush,
            "resume_step": t.start,
        },
        "boundaries": [{"batch": t.batch(i), "step": i, "lr": t.lr(i)} for i in steps],
    }
    return json.dumps(plain(doc), indent=2, allow_nan=False) + "\n"
