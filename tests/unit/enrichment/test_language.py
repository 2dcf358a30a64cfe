import pytest

from pipeline.enrichment.language import detect

SAMPLES = {
    "en": "The government announced on Monday that it would raise taxes on large companies next year.",
    "de": "Die Regierung kündigte am Montag an, dass sie im nächsten Jahr die Steuern für große Unternehmen erhöhen werde.",
    "fr": "Le gouvernement a annoncé lundi qu'il augmenterait l'année prochaine les impôts des grandes entreprises.",
    "es": "El gobierno anunció el lunes que el próximo año subirá los impuestos a las grandes empresas.",
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_detects_language_with_confidence(code):
    found = detect(SAMPLES[code])
    assert found.code == code
    assert 0.9 <= found.confidence <= 1.0


def test_no_letters_is_unknown():
    assert detect("12345 -- 678").code is None


def test_below_threshold_is_unknown_but_keeps_the_guess():
    found = detect("ok", min_confidence=0.99)
    assert found.code is None and found.detected is not None
