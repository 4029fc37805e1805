"""Test configuration: hypothesis profiles.

``repeatable`` is loaded by default, for everyone (``make test``, CI, a new user): the
same examples on every run and every machine (``derandomize``, no example database), and
no wall-clock limit a busy machine could hit (``deadline=None``, no ``too_slow``
health check). ``make fuzz`` loads ``fuzz``: a fresh random draw on every run with
``CFGSCHED_FUZZ_EXAMPLES`` examples per test. ``HYPOTHESIS_PROFILE`` picks a profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Profile loaded when ``HYPOTHESIS_PROFILE`` is unset.
DEFAULT_PROFILE = "repeatable"
#: Health checks that measure time: a loaded machine must not fail the suite.
TIMING_CHECKS = [HealthCheck.too_slow]

settings.register_profile(
    "repeatable",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=TIMING_CHECKS,
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("CFGSCHED_FUZZ_EXAMPLES", "1000")),
    print_blob=True,
    suppress_health_check=TIMING_CHECKS,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", DEFAULT_PROFILE))
