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

CAPTION_VOCAB = re.compile(
    r"\b(?:shows?|showing|pictured|is seen|are seen|seen here|poses?|posing|photo(?:graph)?s?|"
    r"image|picture|in this (?:undated )?(?:photo|picture|image|handout)|collection of photos|"
    r"attends?|arrives?|gestures?|looks on|waves?|from (?:left|right)|\((?:left|right|center|centre)\)|"
    r"v\. ?l\. ?n\. ?r|de gauche à droite|de izquierda a derecha|"
    r"zeigt|abgebildet|foto|bild|posiert|montre|pose|cliché|muestra|imagen|posa|fotografía)\b", _F)

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
# A sentence ending on a full date: "..., in Pyongyang, North Korea, July 27, 2023."
DATE_END = re.compile(
    r"(?:" + _MONTHS + r"\s+\d{1,2},?\s+\d{4}"
    r"|\d{1,2}\.?\s+(?:de\s+)?" + _MONTHS + r"\s+(?:de\s+)?\d{4}"
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})\s*\.?\s*\)?\s*$", _F)

# Lines made of date and time words only.
DATE_TOKEN = re.compile(
    r"^(?:\d{1,4}(?:st|nd|rd|th|h|\.)?|" + _MONTHS + r"|" + _WEEKDAYS + r"|"
    r"am|pm|a\.m|p\.m|gmt|utc|bst|cet|cest|et|est|edt|pt|pst|pdt|ist|mez|mesz|"
    r"published|updated|posted|last|on|at|le|am|um|uhr|de|del|el|publié|mis|à|jour|"
    r"veröffentlicht|aktualisiert|publicado|actualizado|modified|date|min|read|ago|hours?|minutes?|days?)$", _F)

BYLINE = re.compile(
    r"^(?:by|von|par|por|text|texte|written by|posted by|reporting by|words by|story by|autor|auteur)"
    r"\s*:?\s+[^\W\d_][\w.’'-]*(?:\s+[^\W\d_][\w.’'-]*){0,5}"
    r"(?:\s*(?:,|and|und|et|y|&)\s*[^\W\d_][\w.’'-]*(?:\s+[^\W\d_][\w.’'-]*){0,4}){0,3}"
    r"(?:\s*[,|–—/-]\s*.{0,40})?$", _F)

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


def caption_signals(text: str) -> int:
    """Return how many caption signals ``text`` shows (photo vocabulary, a closing date, a credit tail)."""
    score = 0
    if CAPTION_VOCAB.search(text):
        score += 1
    if DATE_END.search(text):
        score += 1
    if CREDIT_PAREN_TAIL.search(text):
        score += 2
    return score


def is_date_line(text: str, n_words: int) -> bool:
    """True when ``text`` is a short line of date/time words only ("Updated: Sept. 11, 2023 10:04 am ET")."""
    if n_words == 0 or n_words > 12 or not re.search(r"\d", text):
        return False
    toks = re.findall(r"[^\s,|:·•–—/()]+", text)
    rest = [t for t in toks if not DATE_TOKEN.match(t.rstrip("."))]
    return len(rest) == 0


def is_byline(text: str, n_words: int, authors: list[str]) -> bool:
    """True when ``text`` is a byline: "By Jane Roe", "Von Max Muster, dpa", or an author's name alone."""
    if n_words == 0 or n_words > 14:
        return False
    t = text.strip().rstrip(".")
    if BYLINE.match(t):
        return True
    norm = normalise(t)
    return any(norm == normalise(a) for a in authors if a)


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
