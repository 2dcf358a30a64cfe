"""Story text that sits where clutter usually sits is kept (precision before recall).

Each case puts a real-looking story line, written for these tests in English, German,
French or Spanish, in the position a structural rule looks at: above a photo credit whose
caption extract dropped, next to a caption, at the edges of the body, between paragraphs,
after a footer.  Every case is checked as extract's blocks, as blank-line paragraphs and as
single-newline text; the positive controls beside them show the rule still works.
"""

from __future__ import annotations

import pytest

from pipeline.boilerplate import ArticleInfo, clean

FORMS = ("blocks", "paragraphs", "lines")


def _clean(paras: list, form: str, **kw):
    """Clean ``paras`` (texts, or (kind, text) pairs) in one of the three input forms."""
    items = [p if isinstance(p, tuple) else ("paragraph", p) for p in paras]
    if form == "blocks":
        return clean(blocks=[{"kind": k, "text": t} for k, t in items], **kw)
    return clean(text=("\n\n" if form == "paragraphs" else "\n").join(t for _, t in items), **kw)


def _removed(result) -> set[str]:
    return {r["text"] for r in result.removed}


# Story paragraphs around the line under test, one set per language.
AROUND = {
    "en": ("A Norwegian fishing trawler with 14 crew aboard lost power off the coast of Svalbard on Sunday, "
           "leaving it drifting towards the ice edge in heavy seas.",
           "A helicopter lifted the first eight crew members to safety on Monday morning, and a tug was expected "
           "to reach the trawler by the evening."),
    "de": ("Nach tagelangen Regenfällen ist der Rhein bei Köln über die Marke von acht Metern gestiegen. Die Stadt "
           "hat mehrere Uferstraßen gesperrt und Sandsäcke an Anwohner verteilt.",
           "Die Schifffahrt auf dem Fluss ist seit Dienstag eingestellt. Wann sie wieder aufgenommen werden kann, "
           "hängt vom Wetter der kommenden Tage ab."),
    "fr": ("Un incendie a parcouru plus de 800 hectares de garrigue dans l'Hérault depuis samedi, obligeant les "
           "autorités à évacuer trois campings et une centaine d'habitations.",
           "Les pompiers espèrent fixer le feu avant la fin de la semaine si le vent faiblit comme prévu par "
           "Météo-France."),
    "es": ("Un tren de mercancías descarriló el lunes a la entrada de la estación de Zaragoza, lo que obligó a "
           "cortar la circulación en la línea que une Madrid con Barcelona durante varias horas.",
           "Adif prevé restablecer el servicio completo el miércoles, una vez retirados los vagones y revisada la "
           "catenaria en el tramo afectado."),
}

# (language, story sentence, the credit line of a photo whose caption extract dropped)
STORY_ABOVE_CREDIT = [
    ("en", "Waves of up to 12 metres and winds gusting to 110 km/h battered the vessel through the night, the "
           "coastguard said, as rescuers waited for a break in the weather.",
     "Photo: Joint Rescue Coordination Centre / Handout"),
    ("en", "\u201cWe have never seen ice move this fast so early in the season,\u201d the captain of the "
           "coastguard cutter told reporters in Longyearbyen.", "(AP Photo/Jane Roe)"),
    ("en", "It shows how little room for error there is when an engine fails this far north in winter.",
     "Photo: Getty Images"),
    ("en", "Shipowners had warned for years that the route was too dangerous for small boats, according to "
           "the fishermen's association.", "Jan Olsen/NTB Scanpix/AFP via Getty Images"),
    ("en", "The new rules on winter fishing in the Barents Sea take effect on January 1, 2025.",
     "Photo: Jane Roe / Reuters"),
    ("de", "Die Feuerwehr zeigt sich nach dem Einsatz erleichtert, wie ein Sprecher am Sonntag sagte.",
     "Foto: Jens Becker/dpa"),
    ("de", "Laut Wetterdienst steht der Höhepunkt des Hochwassers erst noch bevor, am Mittwoch soll der Pegel "
           "weiter steigen.", "Bild: Marius Becker/picture alliance"),
    ("fr", "Selon la préfecture, les secours montrent depuis lundi une mobilisation sans précédent dans la vallée.",
     "Photo : Philippe Martin / AFP"),
    ("fr", "\u00ab Nous avons perdu la moitié de nos vignes en une nuit \u00bb, a déclaré un viticulteur de "
           "Saint-Guilhem devant la mairie.", "Crédit photo : Sylvain Thomas / AFP"),
    ("es", "El alcalde muestra su preocupación por el estado de las vías, según fuentes municipales consultadas "
           "por este diario.", "Foto: Javier Cebollada / EFE"),
    ("es", "\u2014No sabemos cuándo podremos volver a trabajar con normalidad \u2014dijo un maquinista a las "
           "puertas de la estación.", "Foto: Europa Press"),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("lang,sentence,credit", STORY_ABOVE_CREDIT)
def test_a_credit_alone_does_not_make_the_story_sentence_above_it_a_caption(lang, sentence, credit, form):
    first, last = AROUND[lang]
    result = _clean([first, sentence, credit, last], form)
    assert sentence in result.text and first in result.text and last in result.text
    assert sentence not in _removed(result)


def test_the_reported_repro_keeps_the_paragraph_and_drops_only_the_credit():
    first, last = AROUND["en"]
    sentence, credit = STORY_ABOVE_CREDIT[0][1:]
    for form in FORMS:
        result = _clean([first, sentence, credit, last], form)
        assert result.removed == [{"text": credit, "reason": "photo-credit"}]
        assert result.text == "\n\n".join([first, sentence, last])


# (language, a caption left in the body by extract, its credit): still removed, both of them.
CAPTION_ABOVE_CREDIT = [
    ("en", "Rescuers search for survivors in the rubble of a collapsed building in Antakya, Turkey, on "
           "February 8, 2023.", "Photo: Jane Roe / Reuters"),
    ("en", "Kim Jong Un (C) inspects a munitions factory at an undisclosed location in North Korea.",
     "KCNA via REUTERS"),
    ("en", "Crew members of the trawler are pictured after their rescue in Tromsø.", "Photo: NTB / Handout"),
    ("de", "Helfer füllen Sandsäcke am Rheinufer in Köln, aufgenommen am 14. Januar 2024.",
     "Foto: Oliver Berg/dpa"),
    ("fr", "De gauche à droite, les maires de Lodève, de Clermont-l'Hérault et de Gignac.",
     "Photo : Sylvain Thomas / AFP"),
    ("es", "El presidente de Adif saluda a los operarios en la estación de Zaragoza, el 3 de mayo de 2024.",
     "Foto: Javier Cebollada / EFE"),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("lang,caption,credit", CAPTION_ABOVE_CREDIT)
def test_a_caption_with_evidence_of_its_own_still_goes_with_its_credit(lang, caption, credit, form):
    first, last = AROUND[lang]
    result = _clean([first, caption, credit, last], form)
    assert result.text == "\n\n".join([first, last])
    assert {r["reason"] for r in result.removed} == {"photo-caption", "photo-credit"}


# --- lines in another language ----------------------------------------------------------

ENGLISH = [
    "The European Central Bank left interest rates unchanged on Thursday, saying inflation was falling more "
    "slowly than it had hoped at the start of the year.",
    "Economists had expected the pause after three cuts in a row, but several said the bank's tone was more "
    "cautious than in March.",
    "Markets in Frankfurt and Paris closed slightly lower, while the euro gained against the dollar in late "
    "trading in New York.",
]
FOREIGN_BUT_STORY = [
    # names sway langid: German on the names, English in fact
    "Bundesverband der Deutschen Industrie chief Siegfried Russwurm warned of job losses.",
    # a quotation in its original language, reported without quotation marks
    "Nous ne baisserons pas la garde, a déclaré la présidente de la Banque de France.",
    "—No es momento de relajarse —dijo el gobernador del Banco de España.",
    "Die Lage bleibt angespannt, sagte Bundesbankpräsident Joachim Nagel am Abend in Frankfurt.",
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("line", FOREIGN_BUT_STORY)
def test_story_lines_that_look_foreign_are_kept(line, form):
    paras = ENGLISH[:2] + [line] + ENGLISH[2:]
    result = _clean(paras, form)
    assert result.removed == []


def test_a_foreign_caption_title_still_goes():
    paras = ENGLISH[:2] + ["Les dockers du Havre rejoignent le mouvement de grève",
                           "Striking dock workers march through the port of Le Havre, France, March 2, 2024.",
                           "Photo: Lou Benoist / AFP"] + ENGLISH[2:]
    result = _clean(paras, "paragraphs")
    assert result.text == "\n\n".join(ENGLISH)


# --- bylines and date lines at the edges -------------------------------------------------

EDGE_SENTENCES = [
    ("en", "By Tuesday evening, the fire had been contained."),
    ("en", "By Christmas, the queue outside the food bank had doubled."),
    ("de", "Von Montag an gilt auf der Strecke wieder der normale Fahrplan."),
    ("fr", "Par ailleurs, la mairie a annoncé l'ouverture d'une enquête."),
    ("es", "Por eso, el Gobierno regional decidió adelantar las obras."),
    ("es", "Por la tarde, los operarios seguían retirando los vagones."),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("lang,sentence", EDGE_SENTENCES)
def test_short_story_sentences_at_the_edges_are_not_bylines(lang, sentence, form):
    first, last = AROUND[lang]
    for paras in ([sentence, first, last], [first, last, sentence]):
        result = _clean(paras, form)
        assert result.removed == [], paras


def test_real_bylines_still_go():
    first, last = AROUND["fr"]
    for byline in ("Par Claire Dubois, correspondante à Montpellier", "Par Claire Dubois", "By the Associated Press"):
        result = _clean([byline, first, last], "paragraphs")
        assert [r["reason"] for r in result.removed] == ["byline-repeat"]


def test_a_time_heading_of_a_live_story_is_not_a_date_line():
    paras = ["LONGYEARBYEN, Norway (AP) \u2014 The latest on the rescue of a fishing trawler off Svalbard "
             "(all times local):", "10 p.m.", AROUND["en"][0], AROUND["en"][1]]
    for form in FORMS:
        assert _clean(paras, form).removed == []
    dated = ["Updated: March 4, 2024 6:15 pm ET"] + paras[2:]
    assert [r["reason"] for r in _clean(dated, "paragraphs").removed] == ["dateline-repeat"]


# --- teasers between paragraphs ------------------------------------------------------------

def test_subheadings_marked_heading_by_extract_are_kept():
    body = [
        ("paragraph", ENGLISH[0]),
        ("heading", "Why the bank is waiting"),
        ("paragraph", ENGLISH[1]),
        ("heading", "What happens next"),
        ("paragraph", ENGLISH[2]),
        ("heading", "How markets took the decision in Frankfurt and Paris"),
        ("paragraph", "The next meeting is in July, when the bank will publish new forecasts for growth and "
                      "inflation."),
    ]
    result = clean(blocks=[{"kind": k, "text": t} for k, t in body])
    assert result.removed == []
    assert [(b["kind"], b["text"]) for b in result.blocks] == body


def test_a_lone_short_subheading_is_kept():
    paras = ENGLISH[:2] + ["What happens next"] + ENGLISH[2:]
    for form in FORMS:
        assert _clean(paras, form).removed == []


@pytest.mark.parametrize("form", FORMS)
def test_a_line_announced_by_a_colon_is_not_a_teaser(form):
    paras = ["The union listed one demand above all others in its letter to the port authority on Friday:",
             "Higher overtime pay for every night shift worked at the container terminals",
             "Employers said they would answer the letter within a week, but gave no sign of moving on pay."]
    assert _clean(paras, form).removed == []


@pytest.mark.parametrize("form", FORMS)
def test_a_story_sentence_missing_its_full_stop_is_not_a_teaser(form):
    paras = [ENGLISH[0], "Rates will stay where they are until the summer, a spokesman for the bank said",
             ENGLISH[1]]
    assert _clean(paras, form).removed == []


# --- the tail sweep ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_short_story_paragraphs_after_an_inline_source_line_are_kept(form):
    paras = ENGLISH + ["Source: Eurostat", "The figures for May are due on June 18.",
                       "Analysts expect a small rise."]
    result = _clean(paras, form)
    assert "The figures for May are due on June 18." in result.text
    assert "Analysts expect a small rise." in result.text
    assert "tail-after-footer" not in {r["reason"] for r in result.removed}


def test_the_tail_after_a_comment_form_still_goes():
    paras = ENGLISH + ["Leave a Reply", "Notify me of follow-up comments by email.", "Tags", "ECB, Inflation"]
    result = _clean(paras, "paragraphs", article=ArticleInfo(source="markets.example"))
    assert result.text == "\n\n".join(ENGLISH)
