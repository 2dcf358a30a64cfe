"""``boilerplate``: settings of the boilerplate stage."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class BoilerplateSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")
