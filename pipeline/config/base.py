"""Base class for every config section: unknown keys are refused."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Unknown keys are errors (as kafka-python refuses unknown configs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
