"""Base class for every config section: unknown keys are refused."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Unknown keys are errors (as kafka-python refuses unknown configs)."""

    # allow_inf_nan=False: ``.inf`` or ``.nan`` (YAML or PIPELINE__FETCH__DEADLINE=.inf) would
    # silently switch a deadline, timeout or limit off; they are refused with the key path.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
