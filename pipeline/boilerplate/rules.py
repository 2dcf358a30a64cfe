"""Built-in patterns of syndication clutter (English, German, French, Spanish).

Each pattern is matched against one *line* of the body, whitespace-collapsed
and stripped.  Most patterns are anchored on the whole line and carry a word
limit: clutter is short and stands alone, while a story paragraph that merely
mentions "source", "Getty Images" or "subscribe" is long and ends in a
sentence.  The structural rules (captions, credits, teasers, foreign lines)
live in ``pipeline.boilerplate.cleaner``; this module gives them their
vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_F = re.IGNORECASE | re.UNICODE

WORD = re.compile(r"\w+(?:[’'.-]\w+)*", re.UNICODE)


def words(text: str) -> list[str]:
    """Return the words of ``text``."""
    return WORD.findall(text)


@dataclass(frozen=True)
class LineRule:
    code: str
    pattern: re.Pattern[str]
    max_words: int


def _rules(code: str, max_words: int, *patterns: str) -> list[LineRule]:
    return [LineRule(code, re.compile(p, _F), max_words) for p in patterns]


# Separators seen between a label and its content: "Source:", "Quelle :", "Photo -".
_SEP = r"\s*[:：|–—-]\s*"

LINE_RULES: list[LineRule] = [
    # --- syndication footers and disclaimers -------------------------------------
    *_rules("syndication-footer", 12,
            r"^source\s+link\.?$",
            r"^(?:original\s+)?(?:source|sources|quelle|quellen|fuente|fuentes|fonte)" + _SEP + r"\S.*$",
            r"^(?:©|\(c\)|copyright\b).*$",
            r"^.*\b(?:all rights reserved|alle rechte vorbehalten|tous droits réservés|"
            r"todos los derechos reservados)\.?$",
            r"^(?:originally|first) (?:published|posted|appeared) (?:on|at|in|by)\b.*$",
            r"^(?:erstmals|zuerst|ursprünglich) (?:erschienen|veröffentlicht) (?:auf|bei|in)\b.*$",
            r"^(?:publié|paru) (?:initialement|originellement|d'abord|d’abord) (?:sur|dans|par)\b.*$",
            r"^(?:publicado|aparecido) (?:originalmente|primero|inicialmente) en\b.*$"),
    *_rules("syndication-footer", 80,
            # WordPress' RSS footer in its four main locales.
            r"^the post .+ appeared first on .+$",
            r"^der (?:beitrag|artikel) .+ erschien zuerst (?:auf|bei|in) .+$",
            r"^l[’']article .+ est apparu en premier sur .+$",
            r"^(?:la entrada|el artículo|el post) .+ (?:se publicó primero en|apareció primero en) .+$",
            # "This article is generated through the syndicated feed sources ..."
            r"\b(?:this|the above) (?:article|story|post|content|news) (?:is|was|has been) "
            r"(?:auto[- ]?)?(?:generated|published|syndicated|provided|sourced|taken|produced) "
            r"(?:automatically )?(?:through|from|via|by) .{0,60}\b(?:feeds?|syndicat\w*|wire|agency|partners?)\b",
            r"\bpublished from a syndicated feed\b",
            r"\bneither (?:support|endorse)s? nor own\b",
            r"^\(?(?:this|the) (?:article|story|post|piece|report|column) (?:was )?(?:originally|first|initially) "
            r"(?:appeared|published|ran|posted|ran) (?:on|in|at|by)\b.*$",
            r"^\(?(?:this|the) (?:article|story|post|piece|report) (?:originally|first) appeared (?:on|in|at)\b.*$",
            r"^\(?this (?:article|story) (?:is|was) republished (?:from|with)\b.*$",
            r"^\(?(?:republished|reprinted|reproduced) (?:with|by) (?:the )?(?:kind )?permission\b.*$",
            r"^\(?dieser (?:artikel|beitrag|text) (?:ist|erschien|wurde) (?:zuerst|ursprünglich|erstmals)\b.*$",
            r"^\(?(?:cet|le présent) article (?:a été|est) (?:initialement |d'abord |d’abord |originellement )?"
            r"(?:publié|paru)\b.*$",
            r"^\(?este (?:artículo|texto|contenido) (?:fue publicado|apareció|se publicó) "
            r"(?:originalmente|primero|inicialmente|por primera vez)\b.*$"),
    # --- comment forms ---------------------------------------------------------------
    *_rules("comment-prompt", 25,
            r"^leave (?:a|your) (?:reply|comment|response)\b.*$",
            r"^(?:post|submit|add|write) (?:a |your )?comments?$",
            r"^cancel reply$",
            r"^notify me of (?:new posts|follow-?up comments|new comments)\b.*$",
            r"\bthis site uses akismet to reduce spam\b",
            r"\byour email address will not be published\b",
            r"\brequired fields are marked\b",
            r"^save my name,? email,? and website\b",
            r"^you must be logged in to (?:post|leave) a comment\b",
            r"^(?:be the first to comment|comments are closed|join the (?:conversation|discussion))\b.*$",
            r"^(?:\d+\s+)?(?:comments?|kommentare?|commentaires?|comentarios?)(?:\s*\(\d+\))?\s*:?$",
            r"^(?:name|e-?mail|website|comment|kommentar|commentaire|comentario|nombre|correo electrónico)\s*\*\s*$",
            r"^(?:schreibe|schreiben sie|hinterlasse|hinterlassen sie) (?:einen|eine) (?:kommentar|antwort)\b.*$",
            r"\b(?:deine|ihre) e-?mail-?adresse wird nicht veröffentlicht\b",
            r"\berforderliche felder sind (?:mit )?\S* ?markiert\b",
            r"^antworten abbrechen$",
            r"^laisser (?:un commentaire|une réponse)\b.*$",
            r"\bvotre adresse (?:e-?mail|de messagerie|courriel) ne sera pas publiée\b",
            r"\bles champs obligatoires sont indiqués\b",
            r"^annuler la réponse$",
            r"^deja (?:una respuesta|un comentario|tu comentario)\b.*$",
            r"\btu (?:dirección de )?correo(?: electrónico)? no será publicad[oa]\b",
            r"\blos campos obligatorios están marcados\b",
            r"^cancelar respuesta$"),
    # --- share prompts ---------------------------------------------------------------
    *_rules("share-prompt", 12,
            r"^(?:share|share this|share this (?:article|story|post|page)|share on \w+|tweet|tweet this|pin it|"
            r"email this|print|print this (?:article|page)|like this|copy link|link copied|"
            r"teilen|artikel teilen|diesen artikel teilen|jetzt teilen|"
            r"partager|partager cet article|partagez|compartir|compartir en \w+|comparte esta noticia)\s*[:!]?$",
            r"^click to (?:share|email|print) .*$",
            r"^(?:share|teilen|partager|compartir)\b.{0,60}\b(?:facebook|twitter|whatsapp|linkedin|telegram|"
            r"e-?mail|pinterest|reddit)\b.*$",
            r"^(?:facebook|twitter|x|whatsapp|linkedin|telegram|e-?mail|pinterest|reddit|print)"
            r"(?:\s*[,|/·]?\s*(?:facebook|twitter|x|whatsapp|linkedin|telegram|e-?mail|pinterest|reddit|print)){1,}$",
            r"^loading\.\.\.$"),
    # --- newsletter, subscribe and follow prompts -------------------------------------
    *_rules("newsletter-prompt", 30,
            r"^(?:sign up|subscribe|register)\b.{0,60}\b(?:newsletters?|inbox|briefing|alerts?|updates)\b.*$",
            r"^subscribe(?: now| today| here)?\s*[!.]?$",
            r"^(?:get|receive) (?:the|our) .{0,60}\b(?:delivered )?(?:to|in) your inbox\b.*$",
            r"^(?:newsletter|e-?mail) sign[- ]?up\b.*$",
            r"^(?:follow|like) us on (?:twitter|facebook|instagram|linkedin|google news|x|telegram|whatsapp|tiktok)\b.*$",
            r"^download (?:our|the) .{0,40}\bapp\b.*$",
            r"^(?:jetzt )?(?:den )?newsletter (?:abonnieren|bestellen)\b.*$",
            r"^(?:melden sie sich|abonnieren sie)\b.{0,60}\bnewsletter\b.*$",
            r"^folgen sie uns (?:auf|bei)\b.*$",
            r"^abonnez-vous\b.*$",
            r"^inscrivez-vous\b.{0,60}\b(?:newsletter|lettre)\b.*$",
            r"^suivez-nous sur\b.*$",
            r"^suscr[íi]bete\b.*$",
            r"^s[íi]guenos en\b.*$",
            r"^recibe\b.{0,60}\ben tu (?:correo|bandeja)\b.*$"),
    # --- related-story teasers with a label ------------------------------------------
    *_rules("related-teaser", 30,
            r"^(?:related|related stories|related articles?|related coverage|read more|read also|also read|"
            r"see also|more from [\w .]{1,40}|more on this(?: story)?|recommended|you may also like|"
            r"you might also like|don't miss|must read|watch|lesen sie auch|lesen sie mehr|mehr zum thema|"
            r"auch interessant|das könnte sie auch interessieren|lire aussi|à lire aussi|a lire aussi|"
            r"voir aussi|sur le même sujet|lea también|lee también|leer más|te puede interesar|"
            r"relacionad[oa]s?|también te puede interesar|más información)\s*(?:[:|–—»›>-]|\.\.\.|…).*$",
            r"^(?:read more|continue reading|weiterlesen|mehr lesen|lire la suite|leer más|seguir leyendo)"
            r"\s*(?:[.…>»→›]+.*)?$",
            r"^(?:continue reading|keep reading) .{0,80}[→»›…]$"),
    # --- advertisement labels ---------------------------------------------------------
    *_rules("advertisement", 6,
            r"^(?:advertisement|advertisements|ad|sponsored(?: content)?|anzeige|werbung|publicité|publicidad|"
            r"story continues below(?: advertisement)?|article continues below(?: advertisement)?|"
            r"continue reading (?:the main story|below)|scroll to continue(?: with content)?)$"),
]

# --- captions and credits ---------------------------------------------------------------

# Words found (almost) only in photo credits.
CREDIT_STRONG = re.compile(
    r"\b(?:getty images|shutterstock|istock(?:photo)?|alamy|ap photo|imago(?: images)?|picture[- ]alliance|"
    r"sipa(?: usa| press)?|corbis|nurphoto|sopa images|anadolu(?: agency)?|epa-efe|afp via getty|"
    r"state media|state-run media|kcna|wikimedia commons|unsplash|pexels|handout|file photo|"
    r"pool photo|courtesy(?: of)?|bildagentur|archivbild|archivfoto)\b", _F)
# Agencies that also appear in prose: a credit only when the line looks like one.
CREDIT_WEAK = re.compile(
    r"\b(?:afp|reuters|ap|associated press|epa|efe|dpa|xinhua|ansa|keystone|europa press|bloomberg|"
    r"yonhap|kyodo|tass|ria novosti|ritzau|belga|anp|pa(?: images| wire)?|zuma(?: press)?|"
    r"abaca|hans lucas|photothèque|agencia)\b", _F)
CREDIT_LABEL = re.compile(
    r"^\(?(?:photo|photos|photograph|picture|image|images|foto|fotos|bild|bilder|fotografía|imagen|"
    r"crédit(?:s)?(?: photo)?|credit|credits|photo credit|bildquelle|bildnachweis|source image)\b"
    r"(?:\s*(?:by|von|de|par|por))?\s*[:：©/|]?\s*", _F)
_AGENCY = r"(?:afp|reuters|ap|epa|efe|dpa|xinhua|ansa|kcna|yonhap|kyodo|tass|sipa|anp|belga)"
# "(AP Photo/Ahn Young-joon)", "(Photo by Jane Roe/Getty Images)", "(REUTERS/Kim Hong-Ji)", "(Foto: dpa)".
CREDIT_PAREN_TAIL = re.compile(
    r"\((?:[^()]{0,80}\b(?:photo|photos|foto|fotos|photograph|getty images|shutterstock|handout|pool|"
    r"crédit|credit|bild)\b[^()]{0,80}"
    r"|[^()]{0,40}\b" + _AGENCY + r"\s*/[^()]{0,60}"
    r"|[^()]{0,60}/\s*" + _AGENCY + r"\b[^()]{0,40})\)\s*\.?\s*$", _F)

_MONTHS = (
    r"(?:jan(?:uary|\.)?|feb(?:ruary|\.)?|mar(?:ch|\.)?|apr(?:il|\.)?|may|june?|july?|aug(?:ust|\.)?|"
    r"sept?(?:ember|\.)?|oct(?:ober|\.)?|nov(?:ember|\.)?|dec(?:ember|\.)?|"
    r"januar|jänner|februar|märz|mai|juni|juli|oktober|dezember|"
    r"janvier|février|mars|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
    r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre)"
)
_WEEKDAYS = (
    r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|\.)?|"
    r"montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|"
    r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|"
    r"lunes|martes|miércoles|jueves|viernes|sábado|domingo"
)
# --- caption evidence and story evidence ------------------------------------------------
#
# A caption describes a picture: "Rescuers search the rubble in Antakya, Turkey, on
# February 8, 2023." A story sentence reports: "..., the coastguard said." Extract often
# drops a caption and keeps its credit line, so the sentence above a credit is not a caption
# by position alone; it needs evidence of its own, and story evidence (a reporting verb, a
# spoken quotation, a narrative opening) rules it out.

# Phrases found (almost) only in captions: +2.
CAPTION_STRONG = re.compile(
    r"\b(?:pictured|is seen|are seen|seen here|can be seen|photographed|posing|"
    r"poses? (?:for|with|during|after|before|in front of)\b|"
    r"in (?:this|an|a) (?:undated |handout |file |aerial |recent |combination )*(?:photo|picture|image|"
    r"photograph|video grab|screen ?grab|still)|"
    r"(?:file|handout|pool|undated|aerial|archive|combination) (?:photo|picture|image)|"
    r"(?:this|the) (?:photo|picture|image|photograph) (?:was )?(?:taken|shows|released|provided|obtained|made)|"
    r"(?:photo|picture) taken|collection of (?:photos|pictures|images)|video grab|screen ?grab|"
    r"from (?:left|right)(?: to (?:right|left))?|left to right|"
    r"v\. ?l\. ?n\. ?r|von links(?: nach rechts)?|auf (?:dem|diesem) (?:foto|bild)|aufgenommen (?:am|im|in|von)|"
    r"archivbild|archivfoto|symbolbild|"
    r"de gauche à droite|sur (?:la|cette) (?:photo|image)|photo (?:prise|d['’]archives)|image d['’]archives|"
    r"de izquierda a derecha|en la (?:imagen|foto(?:grafía)?)|(?:foto|imagen) de archivo|fotografía de archivo)\b",
    _F)
# A position marker after a name: "Kim Jong Un (C)", "(L-R)", "(2nd L)", "(li.)", "(izq.)".
CAPTION_POSITION = re.compile(
    r"(?:^|\w\s*)\((?:l|r|c|l-r|r-l|left|right|cent(?:er|re)|front|rear|top|bottom|"
    r"(?:\d(?:st|nd|rd|th)|second|third) (?:l|r|left|right)(?: from (?:l|r|left|right))?|"
    r"li\.?|re\.?|m\.?|mitte|g\.?|d\.?|au centre|izq\.?|dcha\.?|centro)\)", _F)
# Present-tense verbs captions describe a picture with ("X gestures", "Y speaks during ..."): +1,
# and only after the line's first word (at the start "Waves of up to 12 metres ..." is a noun).
CAPTION_VERB = re.compile(
    r"\b(?:shows?|showing|attends?|arrives?|gestures?|looks on|waves? (?:to|at|as|from|during)|smiles?|"
    r"speaks?|speaking|stands?|sits?|holds?|walks?|reacts?|celebrates?|inspects?|visits?|greets?|"
    r"addresses|listens?|delivers?|hugs?|embraces?|prays?|mourns?|rides?|carries|watches|enters?|"
    r"takes? part|gathers?|marches|kneels?|"
    r"zeigt|posiert|steht|spricht|besucht|montre|posent?|pose|s['’]exprime|assiste|"
    r"muestra|posa|posan|habla|asiste|saluda)\b", _F)
# A caption's closing place-and-date: "..., in Pyongyang, North Korea, July 27, 2023." /
# "..., le 14 septembre 2023." / "..., el 3 de agosto de 2023." / "..., aufgenommen am 12. Mai 2024."
DATELINE_END = re.compile(
    r",\s*(?:(?:on|le|el|am|the|aufgenommen am|on the)\s+)?(?:(?:" + r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|"
    r"sat|sun)(?:day|\.)?|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|"
    r"jeudi|vendredi|samedi|dimanche|lunes|martes|miércoles|jueves|viernes|sábado|domingo)\s*,?\s+)?"
    r"(?:" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\.?\s+(?:de\s+)?" + _MONTHS + r",?\s+(?:de\s+)?\d{4}"
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})\s*\.?\s*\)?\s*$", _F)

# Reporting verbs and attribution: a sentence that carries them reports, it does not describe a
# picture, and a line in another language that carries them is a quotation.
REPORTING = re.compile(
    r"\b(?:said|says|told|tells|according to|added|adds|explained|stated|warned|insisted|argued|"
    r"asked|replied|reported|announced|wrote|acknowledged|confirmed|denied|"
    r"sagte|sagten|sagt|erklärte|erklärten|betonte|meinte|warnte|berichtete|teilte|kündigte|"
    r"laut|zufolge|hieß es|so der|so die|"
    r"a déclaré|a dit|a affirmé|a expliqué|a indiqué|a ajouté|a précisé|a souligné|a annoncé|a assuré|"
    r"a[- ]t[- ](?:il|elle)|ont déclaré|ont indiqué|selon|d['’]après|déclare|affirme|explique|estime|"
    r"dijo|dijeron|afirmó|declaró|explicó|señaló|aseguró|indicó|añadió|agregó|advirtió|informó|"
    r"según|de acuerdo con|ha dicho|ha declarado|ha asegurado|asegura|afirma|explica)(?!\w)", _F)
# A quoted span between double quotation marks or guillemets (linear: no nested repeats).
QUOTED = re.compile(r"[\"“„«‹]([^\"“”„«»‹›]{1,600})[\"”“»›]")
SPEECH_MIN_WORDS = 4  # "nuclear attack submarine" in a caption is a name; four words or more are speech
# An opening that continues a narrative (a pronoun or a conjunction): story, not a caption.
NARRATIVE_START = re.compile(
    r"^(?:he|she|it|they|we|i|but|and|however|meanwhile|yet|so|then|"
    r"er|sie|es|wir|ich|aber|doch|und|dennoch|il|elle|ils|elles|nous|on|mais|et|pourtant|cependant|"
    r"él|ella|ellos|ellas|nosotros|pero|sin embargo|además|y)\b", _F)
_SENTENCE_BREAK = re.compile(r"[.!?…][\"”»’')\]]?\s+(?=[\"“„«]?[A-ZÀ-ÖØ-Þ])")


def story_evidence(text: str) -> bool:
    """True when ``text`` reports rather than describes: a reporting verb or a spoken quotation."""
    if REPORTING.search(text) or text.lstrip()[:1] in "—―":
        return True
    return any(len(words(m.group(1))) >= SPEECH_MIN_WORDS for m in QUOTED.finditer(text))


def caption_evidence(text: str, n_words: int) -> int:
    """Return how much ``text`` itself reads like a photo caption (0 when it reads like story).

    +2 caption-only phrases ("pictured", "(L-R)", "file photo", "de gauche à droite") or a
    credit in parentheses at its end; +1 a present-tense picture verb after the first word
    ("shows", "gestures", "zeigt", "muestra"); +1 a closing ", <place>, <date>"; +1 being
    short (20 words or fewer) when there is other evidence; -1 for a second sentence.  A
    reporting verb, a spoken quotation, a narrative opening ("He", "But") or three
    sentences or more make it 0 whatever else it has.
    """
    t = text.strip()
    if not t or n_words > 60 or story_evidence(t) or NARRATIVE_START.match(t):
        return 0
    sentences = 1 + len(_SENTENCE_BREAK.findall(t))
    if sentences >= 3:
        return 0
    score = 0
    if CAPTION_STRONG.search(t) or CAPTION_POSITION.search(t):
        score += 2
    if CREDIT_PAREN_TAIL.search(t):
        score += 2
    if any(m.start() > 0 for m in CAPTION_VERB.finditer(t)):
        score += 1
    if DATELINE_END.search(t):
        score += 1
    if score and n_words <= 20:
        score += 1
    if sentences == 2:
        score -= 1
    return max(score, 0)


# Lines made of date and time words only.
DATE_TOKEN = re.compile(
    r"^(?:\d{1,4}(?:st|nd|rd|th|h|\.)?|" + _MONTHS + r"|" + _WEEKDAYS + r"|"
    r"am|pm|a\.m|p\.m|gmt|utc|bst|cet|cest|et|est|edt|pt|pst|pdt|ist|mez|mesz|"
    r"published|updated|posted|last|on|at|le|am|um|uhr|de|del|el|publié|mis|à|jour|"
    r"veröffentlicht|aktualisiert|publicado|actualizado|modified|date|min|read|ago|hours?|minutes?|days?)$", _F)

BYLINE_LEAD = re.compile(
    r"^(?:by|von|par|por|text|texte|written by|posted by|reporting by|words by|story by|autor|autora|auteur)"
    r"\s*:?\s+(\S.*)$", _F)
# Lower-case words a name or a byline's tail may hold: "Ludwig van Beethoven", "By the Associated
# Press", "Par Claire Dubois, correspondante à Bruxelles", "Von Max Muster, dpa".
_NAME_PARTICLES = frozenset(
    "de da di do del della der den des du dos das van von vom zu le la les bin ibn al el y e and und et & "
    "the of for in at à au aux en für bei aus from".split())
_BYLINE_SPLIT = re.compile(r"\s*[,|–—/;]\s*|\s+-\s+")

QUOTE_OPEN = "\"“„«‘‚'‹「"
QUOTE_CLOSE = "\"”»’'›」"
TERMINAL = tuple(".!?…\"”»’')]:;")


def match_line(text: str, n_words: int, disabled: frozenset[str] = frozenset()) -> str | None:
    """Return the code of the first built-in line rule ``text`` matches, or None."""
    for rule in LINE_RULES:
        if n_words > rule.max_words or rule.code in disabled:
            continue
        if rule.pattern.search(text):
            return rule.code
    return None


def is_credit(text: str, n_words: int) -> str | None:
    """Return "strong" when ``text`` is a photo credit on its own, "weak" when it may be one, else None.

    A credit is short, has no sentence end and names a photographer or agency:
    "KCNA/North Korean state media", "Photo: Jane Roe / Getty Images",
    "(AP Photo/Lee Jin-man)", "Foto: dpa".
    """
    t = text.strip()
    if n_words == 0 or n_words > 12:
        return None
    if t.endswith((".", "!", "?", ":")) and not t.endswith(("Inc.", "Ltd.", "Co.")):
        return None
    m = CREDIT_LABEL.match(t)
    label = bool(m) and bool(words(t[m.end():])) and (n_words <= 8 or "/" in t)
    strong = bool(CREDIT_STRONG.search(t))
    weak = bool(CREDIT_WEAK.search(t))
    slash = bool(re.search(r"\w\s*/\s*\w", t))
    parens = t.startswith("(") and t.endswith(")")
    if label and (strong or weak or slash or n_words <= 6):
        return "strong"
    if strong and (slash or parens or n_words <= 6):
        return "strong"
    if weak and (slash or parens):
        return "strong"
    if strong or weak:
        return "weak"
    return None


# What makes a line of date/time words a date line rather than a time alone ("10 p.m." heads
# an entry of a live story): a month, a weekday, a year, a numeric date, or a publishing word.
DATE_WORD = re.compile(
    r"\b(?:" + _MONTHS + r"|" + _WEEKDAYS + r"|\d{4}|\d{1,2}[./-]\d{1,2}(?:[./-]\d{2,4})?|ago|"
    r"published|updated|posted|modified|veröffentlicht|aktualisiert|publié|mis à jour|publicado|actualizado)"
    r"(?!\w)", _F)


def is_date_line(text: str, n_words: int) -> bool:
    """True when ``text`` is a short line of date/time words only ("Updated: Sept. 11, 2023 10:04 am ET")."""
    if n_words == 0 or n_words > 12 or not re.search(r"\d", text):
        return False
    toks = re.findall(r"[^\s,|:·•–—/()]+", text)
    rest = [t for t in toks if not DATE_TOKEN.match(t.rstrip("."))]
    return len(rest) == 0 and bool(DATE_WORD.search(text))


def is_byline(text: str, n_words: int, authors: list[str]) -> bool:
    """True when ``text`` is a byline: "By Jane Roe", "Von Max Muster, dpa", or an author's name alone.

    After "By"/"Von"/"Par"/"Por" come names (capitalised words, not dates), then at most a
    short tail after a separator (an agency, a job title).  "By Tuesday evening, the fire was
    out", "Par ailleurs, la mairie ..." and "Por eso, el Gobierno ..." are sentences.
    """
    if n_words == 0 or n_words > 14:
        return False
    t = text.strip()
    norm = normalise(t.rstrip("."))
    if any(norm == normalise(a) for a in authors if a):
        return True
    m = BYLINE_LEAD.match(t)
    if not m or t.endswith(("!", "?", ":", ";")):
        return False
    names, *tail = _BYLINE_SPLIT.split(m.group(1).rstrip("."), maxsplit=1)
    name_words = names.split()
    if not 1 <= len(name_words) <= 8:
        return False
    capitalised = 0
    for w in name_words:
        bare = w.strip(".,’'")
        if bare.casefold() in _NAME_PARTICLES:
            continue
        if not bare[:1].isupper() or DATE_TOKEN.match(bare):
            return False
        capitalised += 1
    if not capitalised:
        return False
    tail_words = words(tail[0]) if tail else []
    loose = [w for w in tail_words if not w[:1].isupper() and w.casefold() not in _NAME_PARTICLES]
    return len(loose) <= 2 and len(tail_words) <= 8


def normalise(text: str) -> str:
    """Case-fold, drop punctuation and collapse whitespace (for comparing lines)."""
    return " ".join(words(text.casefold()))


def ends_sentence(text: str) -> bool:
    return text.rstrip().endswith(TERMINAL)


def is_title_like(text: str, n_words: int) -> bool:
    """A short line with no sentence end that starts with a capital: a heading or a teaser."""
    t = text.strip()
    if not 3 <= n_words <= 20 or len(t) > 160:
        return False
    if t[:1] in QUOTE_OPEN or t.rstrip(QUOTE_CLOSE + ")]").endswith(tuple(".!?…:;,")):
        return False  # a quotation or a sentence, not a title
    return t[:1].isupper() or t[:1].isdigit()
