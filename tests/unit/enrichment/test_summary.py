from pipeline.enrichment.keywords import keywords
from pipeline.enrichment.summary import reading_time_minutes, sentences, summarize, word_count

TEXT = """The city council approved a new bridge on Wednesday after years of debate about its cost.

The bridge will carry trains, buses, bicycles and pedestrians but no private cars.

Mr. Halvorsen, who voted against the bridge, said the U.S. government would pay most of the cost.

Construction of the bridge is expected to start next summer and to take four years.

Caption: the river at dusk

Residents said the bridge would change their daily commute across the river."""


def test_sentences_respect_abbreviations():
    s = sentences("Mr. Kim met U.S. officials on Sept. 8. They talked. Then left!")
    assert s == ["Mr. Kim met U.S. officials on Sept. 8.", "They talked.", "Then left!"]


def test_summary_is_two_or_three_sentences_taken_from_the_text():
    summary = summarize(TEXT, max_sentences=3)
    picked = sentences(summary)
    assert 2 <= len(picked) <= 3
    assert all(s in TEXT for s in picked)
    assert picked[0].startswith("The city council")  # the lead


def test_summary_of_nothing():
    assert summarize("Source link") is None


def test_word_count_and_reading_time():
    assert word_count("Kim Jong-un met U.S. officials, didn’t he?") == 7
    assert reading_time_minutes(460, 230) == 2.0
    assert reading_time_minutes(0) == 0.0


def test_keywords_prefer_recurring_phrases():
    kws = keywords(TEXT, top=5)
    assert "bridge" in [k.lower() for k in kws]
    assert len(kws) <= 5


def test_summary_and_word_count_in_one_pass_match_the_separate_calls():
    from pipeline.enrichment.summary import summary_and_word_count

    for text in (TEXT, "", "Source link", "Mr. Kim met U.S. officials on Sept. 8.\nThey talked, didn’t they?"):
        assert summary_and_word_count(text, max_sentences=2) == (summarize(text, max_sentences=2), word_count(text))
