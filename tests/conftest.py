"""Settings for every test: hypothesis never times examples out (CI machines are shared and
slow), and under CI its examples are derandomised so a run can be repeated exactly."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("mm", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          derandomize=bool(os.environ.get("CI")))
settings.load_profile("mm")
