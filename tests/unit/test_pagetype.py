"""The page-type verdict: every labelled page under tests/data/pages/types carries its expected type
and URL in its first line; read exactly as the extract stage reads a fetched page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.extraction import extract_html
from pipeline.pagetype import PAGE_TYPES

TYPES = Path(__file__).resolve().parents[1] / "data" / "pages" / "types"
LABEL = re.compile(rb"<!--\s*expect:\s*([\w_]+);\s*url:\s*(\S+)\s*-->")


def labelled():
    for path in sorted(TYPES.rglob("*.html")):
        m = LABEL.search(path.read_bytes()[:400])
        yield pytest.param(path, m.group(1).decode(), m.group(2).decode(), id=f"{path.parent.name}/{path.stem}")


def test_the_set_has_forty_pages_or_more_and_covers_every_type():
    kinds = [p.values[1] for p in labelled()]
    assert len(kinds) >= 40
    assert set(kinds) == set(PAGE_TYPES)


@pytest.mark.parametrize("path,expected,url", list(labelled()))
def test_page_type(path, expected, url):
    page = extract_html(path.read_bytes(), url)
    assert page.page_type == expected, page.page_type_signal
    assert page.page_type_signal  # the evidence is named
