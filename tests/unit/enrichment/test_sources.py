import pytest

from pipeline.enrichment.sources import detect

CASES = [
    ("a senior South Korean official told CBS News last week.", "CBS News"),
    ("WASHINGTON (AP) — The Senate voted on Thursday.", "AP"),
    ("Oil fell on Monday. (Reuters)", "Reuters"),
    ("Floods hit the north. — AFP", "AFP"),
    ("the minister said, according to The Washington Post.", "The Washington Post"),
    ("This story originally appeared on Grist.", "Grist"),
    # The name stops at the end of its sentence, initials do not end it.
    ("the miner told the Guardian. Cullinan said the stone was found in May.", "Guardian"),
    ("The launch was reported by the Korean Central News Agency. KCNA said it was a test.",
     "Korean Central News Agency"),
    ("the senator said in an interview with U.S. News last week.", "U.S. News"),
]


@pytest.mark.parametrize("text,name", CASES)
def test_credits(text, name):
    assert detect(text)["name"] == name


def test_source_link_domain_from_removed_boilerplate():
    found = detect("Body text.", ["Source link: https://www.cbsnews.com/news/kim-putin-meeting/"])
    assert found["domain"] == "cbsnews.com"


def test_a_person_is_not_a_source():
    assert detect("The mayor told John Smith it was fine, according to officials.") is None


@pytest.mark.parametrize("text", ["SOURCE: https://www.cbsnews.com/news/x", "Originally published at cbsnews.com",
                                  "Read the original: https://cbsnews.com/a"])
def test_source_links_in_any_case(text):
    assert detect("Body text. " + text)["domain"] == "cbsnews.com"
