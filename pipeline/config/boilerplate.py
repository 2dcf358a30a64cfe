"""``boilerplate``: settings of the boilerplate stage.

Example (every key optional)::

    boilerplate:
      max_removed_share: 0.5        # more than this share of the text would go -> keep all, flag
      foreign_lines:
        enabled: true
        min_confidence: 0.9         # langid probability (restricted to common languages)
      templates:
        enabled: true
        min_articles: 20            # learn nothing from fewer articles of a source
        min_share: 0.3              # a block in >= 30% of the source's recent articles is a template
        window_days: 30
      disable: [related-teaser]     # built-in rule families to switch off
      rules:
        - name: example-promo
          match: substring          # exact | substring | regex
          pattern: "Download the Example app"
          sources: [example.com]    # domains (subdomains included) or feed URLs; empty = all
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from pipeline.config.base import Section

# The built-in rule families (the first part of a removal's reason), for ``disable``.
BUILTIN_RULES = (
    "syndication-footer", "comment-prompt", "share-prompt", "newsletter-prompt", "related-teaser",
    "advertisement", "photo-caption", "photo-credit", "foreign-language", "byline-repeat",
    "dateline-repeat", "title-repeat", "tail-after-footer", "learned-template",
)


class OperatorRule(Section):
    """One operator rule: a block matching it is removed with reason ``operator-rule:<name>``."""

    name: str = Field(min_length=1, description="Short name, shown in the removal reason.")
    match: Literal["exact", "substring", "regex"] = "substring"
    pattern: str = Field(min_length=1)
    sources: list[str] = Field(default_factory=list,
                               description="Domains (subdomains included) or feed URLs; empty means every source.")
    case_sensitive: bool = False

    @field_validator("pattern")
    @classmethod
    def _regex_compiles(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("match") == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value


class ForeignLineSettings(Section):
    enabled: bool = True
    min_confidence: float = Field(0.9, gt=0, le=1,
                                  description="Probability a line is in another language before it goes on that alone.")
    min_words: int = Field(4, ge=1, description="Shorter lines are never judged by language.")


class TemplateSettings(Section):
    enabled: bool = True
    min_articles: int = Field(20, ge=2, description="Learn nothing from fewer recent articles of the source.")
    min_share: float = Field(0.3, gt=0, le=1,
                             description="Share of the source's recent articles a block must recur in.")
    window_days: float = Field(30, gt=0, description="Only articles seen this recently count.")
    max_block_words: int = Field(80, ge=1, description="Longer blocks are never learned as templates.")


class BoilerplateSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")
    max_removed_share: float = Field(
        0.5, gt=0, le=1,
        description="When removal would take more than this share of the text's characters, keep it all and flag.")
    foreign_lines: ForeignLineSettings = Field(default_factory=ForeignLineSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)
    disable: list[str] = Field(default_factory=list, description="Built-in rule families to switch off.")
    rules: list[OperatorRule] = Field(default_factory=list)

    @field_validator("disable")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in BUILTIN_RULES]
        if unknown:
            raise ValueError(f"unknown rule families {unknown}; known: {', '.join(BUILTIN_RULES)}")
        return value
