import pytest

from pipeline.enrichment.countries import country_code, display_name, us_state


@pytest.mark.parametrize("name,code", [
    ("U.S.", "US"), ("the United States", "US"), ("America", "US"), ("Britain", "GB"), ("U.K.", "GB"),
    ("South Korea", "KR"), ("North Korea’s", "KP"), ("Russia", "RU"), ("Germany", "DE"), ("Côte d’Ivoire", "CI"),
])
def test_iso_codes(name, code):
    assert country_code(name) == code


@pytest.mark.parametrize("name", ["Seoul", "England", "Korea", "Midwest"])
def test_not_a_country(name):
    assert country_code(name) is None


def test_display_names_are_the_ones_news_uses():
    assert display_name("RU") == "Russia" and display_name("KR") == "South Korea" and display_name("FR") == "France"


def test_ap_state_abbreviations():
    assert us_state("Ore.") == "Oregon" and us_state("N.Y.") == "New York" and us_state("Paris") is None
