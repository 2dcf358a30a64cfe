"""Issue 16: entity types the article's own text contradicts, and keywords a person would not pick."""

from pipeline.enrichment.entities import merge
from pipeline.enrichment.keywords import fast_keywords

STORY = ("BERGEN, Norway (CPS) — Rescue helicopters lifted 14 sailors from a cargo ship on Tuesday. "
         "The storm, named Ylva by Norwegian forecasters, swept across the North Sea on Monday. "
         "The Nordhavn Carrier lost power west of Bergen in waves of up to 12 metres, said Tomasz Wisniewski, "
         "the captain. Tomasz Wisniewski said the crew was calm. Ylva is expected to weaken on Wednesday. "
         "The crew were taken to Haukeland University Hospital in Bergen, the rescue centre said. "
         "A spill response vessel was sent from Bergen, the coastal administration said on Tuesday.")


def test_a_storm_name_is_no_person_and_a_city_the_text_maps_is_a_place():
    spans = [("BERGEN", "ORG"), ("Ylva", "PERSON"), ("Bergen", "ORG"), ("Tomasz Wisniewski", "PERSON"),
             ("Ylva", "PERSON"), ("Haukeland University Hospital", "ORG"), ("Bergen", "ORG"), ("Norway", "GPE")]
    got = merge(spans, STORY).as_dict()
    assert [p["name"] for p in got["people"]] == ["Tomasz Wisniewski"]
    assert "Bergen" in [p["name"] for p in got["locations"]]
    assert [o["name"] for o in got["organizations"]] == ["Haukeland University Hospital"]


def test_a_full_name_before_a_place_stays_a_person():
    text = "John Smith, Texas Republican, said the bill would pass. Smith spoke in Austin."
    got = merge([("John Smith", "PERSON"), ("Smith", "PERSON"), ("Austin", "GPE")], text).as_dict()
    assert [p["name"] for p in got["people"]] == ["John Smith"]


def test_keywords_leave_out_reporting_verbs_weekdays_and_lone_first_names():
    kws = [k.lower() for k in fast_keywords(STORY, language="en", top=10)]
    assert kws, "no keywords at all"
    for word in ("said", "tuesday", "monday", "wednesday", "tomasz"):
        assert word not in kws, kws
