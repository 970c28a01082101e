"""Hypothesis profiles for the whole test suite.

``dev`` (the default) runs ~100 examples per property; ``ci`` runs 200 with no per-example
deadline (CI machines are slow and noisy). Choose with ``HYPOTHESIS_PROFILE=ci``. Both
print a reproduction blob for every failure, so a CI failure can be replayed locally
with ``@reproduce_failure``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=100,
    print_blob=True,
    # Strategies here build whole SMTP dialogues; generation is legitimately slowish.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
