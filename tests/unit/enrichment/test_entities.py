"""Alias merging and the corrections of model mislabels, on spans (no model needed)."""

from pipeline.enrichment.entities import clean, merge, name_key


def names(entities):
    return {e["name"]: e["count"] for e in entities}


def test_kim_spellings_and_bare_surname_are_one_person():
    r = merge([("Kim Jong Un", "PERSON"), ("Kim Jong-un", "PERSON"), ("Kim", "PERSON"), ("Kim’s", "PERSON")])
    assert names(r.people) == {"Kim Jong Un": 4}


def test_us_and_the_united_states_are_one_place_with_its_iso_code():
    r = merge([("U.S.", "GPE"), ("the United States", "GPE"), ("US", "GPE"), ("America", "GPE")])
    assert names(r.locations) == {"United States": 4}
    assert r.countries == ["US"]


def test_uk_variants_are_one_place():
    r = merge([("Britain", "GPE"), ("the U.K.", "GPE"), ("United Kingdom", "GPE")])
    assert names(r.locations) == {"United Kingdom": 3}
    assert r.countries == ["GB"]


def test_mislabelled_surnames_count_as_the_person():
    r = merge([("Vladimir Putin", "PERSON"), ("Putin", "GPE"), ("Kim Jong Un", "PERSON"), ("Kim", "ORG"),
               ("Kim-Putin", "PERSON")])
    assert names(r.people) == {"Vladimir Putin": 3, "Kim Jong Un": 3}
    assert r.organizations == [] and r.locations == []


def test_a_country_labelled_org_is_a_place():
    r = merge([("Ukraine", "ORG"), ("Ukraine", "GPE")])
    assert names(r.locations) == {"Ukraine": 2} and r.organizations == []


def test_acronym_merges_into_the_long_form():
    r = merge([("National Intelligence Service", "ORG"), ("NIS", "ORG"), ("the U.N.", "ORG"),
               ("the United Nations", "ORG")])
    assert names(r.organizations) == {"National Intelligence Service": 2, "United Nations": 2}


def test_lone_surname_is_completed_from_the_text():
    text = "Margrethe Lund, the commissioner, spoke. Lund said the fine was fair."
    r = merge([("Lund", "PERSON")], text)
    assert names(r.people) == {"Margrethe Lund": 1}


def test_full_name_labelled_org_joins_the_person():
    r = merge([("Novak Djokovic", "ORG"), ("Djokovic", "PERSON"), ("Djokovic", "PERSON")])
    assert names(r.people) == {"Novak Djokovic": 3}


def test_ambiguous_surname_goes_to_the_most_mentioned():
    r = merge([("John Smith", "PERSON"), ("John Smith", "PERSON"), ("Anna Smith", "PERSON"), ("Smith", "PERSON")])
    assert names(r.people) == {"John Smith": 3, "Anna Smith": 1}


def test_other_labels_are_ignored_and_orders_by_count():
    r = merge([("Monday", "DATE"), ("Russian", "NORP"), ("Paris", "GPE"), ("Lyon", "GPE"), ("Lyon", "GPE")])
    assert [e["name"] for e in r.locations] == ["Lyon", "Paris"]
    assert r.people == [] and r.organizations == []


def test_cleaning_and_keys():
    assert clean("President Joe Biden's", "people") == "Joe Biden"
    assert clean("the European Union", "organizations") == "European Union"
    assert clean("U.S.", "locations") == "U.S."
    assert clean("Northgate City 2-1", "organizations") == "Northgate City"
    assert name_key("Sergueï Choïgou") == "serguei choigou"
    assert name_key("O'Brien") == name_key("O’Brien") == "obrien"


def test_lone_surname_takes_the_most_written_full_name_and_skips_titles():
    text = ("President Anna Maria Lund met Erik Lund. Later Anna Maria Lund spoke; Lund's aide, "
            "Mr. Lund, and the Lund family did not. The Lund report is due.")
    r = merge([("Lund", "PERSON")], text)
    assert names(r.people) == {"Anna Maria Lund": 1}


def test_lone_surname_inside_a_longer_word_is_not_completed_from_it():
    r = merge([("Lund", "PERSON")], "Sofia Lundqvist spoke. Lund said the fine was fair.")
    assert names(r.people) == {"Lund": 1}
