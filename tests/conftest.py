"""Settings for the whole test suite."""

import os

from hypothesis import settings

# In CI the property tests explore the same examples on every run, so a red build
# always points at a change, never at a newly drawn example; locally they roam.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
