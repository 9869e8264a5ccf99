"""Hypothesis profiles: `ci` (default; bounded, deterministic, no example database) and
`thorough` (long local runs). Choose with NUMPY_NINJA_PROFILE=thorough."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NUMPY_NINJA_PROFILE", "ci"))
