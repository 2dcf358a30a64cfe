"""The cleaner on syndicated copies written for these tests, as blocks and as plain text."""

from __future__ import annotations

import pytest

from pipeline.boilerplate import ArticleInfo, OperatorRule, Options, clean, split_text
from tests.unit.boilerplate.fixtures import PAGES, blocks, flat, story

FORMS = {
    "blocks": lambda page: {"blocks": blocks(page), "text": flat(page)},
    "paragraphs": lambda page: {"text": flat(page)},  # feed content, blank lines between paragraphs
    "lines": lambda page: {"text": flat(page, "\n")},  # feed content with single newlines only
}


def _article(name: str) -> ArticleInfo:
    site, title, authors, _ = PAGES[name]
    return ArticleInfo(source=site, url=f"https://www.{site}/news/{name}", title=title, authors=tuple(authors))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", PAGES)
def test_clean_text_is_the_story_alone(name, form):
    page = PAGES[name][3]
    result = clean(**FORMS[form](page), article=_article(name))
    assert not result.flagged
    assert result.text == story(page)
    clutter = [text for _, text, keep in page if not keep]
    removed = "\n".join(r["text"] for r in result.removed)
    for item in clutter:
        for line in item.split("\n"):
            assert line in removed  # every removal is recorded ...
    assert all(r["reason"] for r in result.removed)  # ... with its reason


def test_reasons_name_the_kind_of_clutter():
    page = PAGES["port-strike"][3]
    reasons = {r["text"]: r["reason"] for r in clean(text=flat(page), article=_article("port-strike")).removed}
    assert reasons["Source link"] == "syndication-footer"
    assert reasons["Leave a Comment"] == "comment-prompt"
    assert reasons["Share this article"] == "share-prompt"
    assert reasons["Sign up for our daily shipping briefing"] == "newsletter-prompt"
    assert reasons["Why container rates are climbing again this spring"] == "related-teaser"
    assert reasons["Jan de Vries/ANP via Getty Images"] == "photo-credit"
    assert reasons["Dock workers gather outside the terminal gates in Rotterdam, Netherlands, on March 3, 2024."] \
        == "photo-caption"
    assert reasons["Les dockers du Havre rejoignent le mouvement de grève"] == "foreign-language:fr"
    assert reasons["By Marta Okonkwo"] == "byline-repeat"
    assert reasons["Updated: March 4, 2024 6:15 pm ET"] == "dateline-repeat"


def test_blocks_keep_their_kind_and_extra_fields():
    page = PAGES["harvest"][3]
    bl = blocks(page)
    bl[1]["xpath"] = "/p[1]"
    result = clean(blocks=bl, text=flat(page), article=_article("harvest"))
    assert result.blocks[0] == {"kind": "paragraph", "text": bl[1]["text"], "xpath": "/p[1]"}
    assert result.text == "\n\n".join(b["text"] for b in result.blocks)


STORY = [
    "The regional water authority approved a plan on Tuesday to build a desalination plant on the coast, "
    "ending a debate that had divided the council for almost three years.",
    "A source close to the authority said the vote had been delayed twice because of concerns about the "
    "cost of electricity, which makes up most of the plant's running expenses.",
    "What comes next",
    "The photographer Ana Ruiz, whose pictures of the dry riverbed were syndicated by Getty Images and "
    "Reuters, said the images had helped change public opinion.",
    "Residents quoted the old saying \u201cqui vivra verra\u201d when asked whether the plant would be "
    "finished on time, and several said they would believe it when they saw it.",
    "Construction is due to start next spring, and the new rules on water use take effect on January 1, 2025.",
    "Shows of support came from farmers' groups, who said the plant would secure supplies for the valley.",
    "Subscribers to the authority's alerts will be told when the consultation on the route of the pipeline "
    "opens, officials said.",
]


@pytest.mark.parametrize("sep", ["\n\n", "\n"])
def test_real_paragraphs_that_look_a_little_like_clutter_are_kept(sep):
    result = clean(text=sep.join(STORY), article=ArticleInfo(source="water.example"))
    assert result.removed == []
    assert result.text == "\n\n".join(STORY)


def test_a_french_quote_in_an_english_story_is_kept():
    text = "\n\n".join(STORY[:2] + ["\u00ab Nous ne c\u00e9derons pas sur le prix de l'eau \u00bb, a "
                                  "d\u00e9clar\u00e9 le pr\u00e9sident du syndicat agricole."] + STORY[3:])
    assert clean(text=text).removed == []


def test_flagged_and_kept_when_removal_would_take_too_much():
    text = "\n\n".join([STORY[0], "Share this article", "Sign up for our newsletter", "Leave a Reply",
                        "Your email address will not be published.", "Source link", "Related: Farmers fear a third dry summer in a row",
                        "Save my name, email, and website in this browser for the next time I comment."])
    result = clean(text=text, options=Options(max_removed_share=0.5))
    assert result.flagged
    assert result.text == text
    assert result.removed == []
    assert {r["reason"] for r in result.would_remove} >= {"share-prompt", "comment-prompt"}
    assert not clean(text=text, options=Options(max_removed_share=0.9)).flagged


def test_operator_rules_exact_substring_regex_per_source():
    text = "\n\n".join(STORY[:3] + ["Get the Harbour app for breaking news", "Promo code SPRING24 inside",
                                   "Listen to this story (4 min)"] + STORY[3:])
    rules = (
        OperatorRule(name="app", match="substring", pattern="harbour app", sources=("harbour.example",)),
        OperatorRule(name="promo", match="regex", pattern=r"^promo code \w+", sources=("https://harbour.example/feed",)),
        OperatorRule(name="audio", match="exact", pattern="Listen to this story (4 min)"),
        OperatorRule(name="elsewhere", match="substring", pattern="desalination", sources=("other.example",)),
    )
    art = ArticleInfo(source="news.harbour.example", url="https://news.harbour.example/a",
                      feed_url="https://harbour.example/feed")
    result = clean(text=text, article=art, options=Options(rules=rules))
    assert [r["reason"] for r in result.removed] == ["operator-rule:app", "operator-rule:promo",
                                                      "operator-rule:audio"]
    assert result.text == "\n\n".join(STORY)
    other = clean(text=text, article=ArticleInfo(source="unrelated.example"), options=Options(rules=rules))
    assert [r["reason"] for r in other.removed] == ["operator-rule:audio"]


def test_extract_captions_go_and_headings_stay():
    bl = [{"kind": "paragraph", "text": STORY[0]}, {"kind": "heading", "text": "How the plant will work in practice"},
          {"kind": "paragraph", "text": STORY[1]}, {"kind": "caption", "text": "The dry riverbed near the plant site."},
          {"kind": "paragraph", "text": STORY[3]}]
    result = clean(blocks=bl)
    assert [b["kind"] for b in result.blocks] == ["paragraph", "heading", "paragraph", "paragraph"]
    assert result.removed == [{"text": "The dry riverbed near the plant site.", "reason": "photo-caption"}]


def test_tail_sweep_takes_short_lines_after_a_footer():
    text = "\n\n".join(STORY[:3] + ["This article originally appeared on Coastal Weekly.", "Tags", "Water, Energy",
                                   "Posted in Local"])
    result = clean(text=text)
    assert result.text == "\n\n".join(STORY[:3])
    assert [r["reason"] for r in result.removed] == ["syndication-footer"] + ["tail-after-footer"] * 3


def test_disabled_rule_families_do_nothing():
    page = PAGES["port-strike"][3]
    result = clean(text=flat(page), options=Options(disabled=frozenset({"related-teaser"})))
    assert "Why container rates are climbing again this spring" in result.text


def test_split_text_marks_layout_gaps():
    parts = split_text("One para.\n\nTitle line\n\n\nNext para.")
    assert [p["text"] for p in parts] == ["One para.", "Title line", "Next para."]
    assert parts[1]["gap_after"] and parts[2]["gap_before"] and not parts[0]["gap_after"]
    assert [p["text"] for p in split_text("a\nb\n\n")] == ["a", "b"]
    assert split_text("") == []


def test_empty_and_odd_input():
    assert clean(text="").text == ""
    assert clean(text="\n\n \n").removed == []
    assert clean(blocks=[{"kind": "paragraph", "text": ""}]).text == ""
