"""What kind of page the fetcher got: an article, or something that must not pass as one.

``classify_page(tree, url, text, ...)`` returns ``(page_type, signal)``: the verdict and the
evidence that decided it, read from the parsed page, its extracted body text and its
metadata.  Types, checked in this order (the first that fits wins):

- ``challenge``: a captcha or bot check (Cloudflare "Just a moment...", reCAPTCHA/hCaptcha,
  DataDome, PerimeterX, "verify you are a human"), with little text of its own.
- ``consent_wall``: a cookie/privacy consent page standing in front of the article
  (consent vocabulary in a short body, a consent form or a consent host in the URL).
- ``soft_404``: "page not found" served with status 200 (title or main heading, short body).
- ``paywall``: a subscriber-only teaser (JSON-LD ``isAccessibleForFree: false`` or
  subscription prompts) with a short body.
- ``listing``: a home, section, tag or search page: JSON-LD ``CollectionPage``/``ItemList``,
  or a body that is mostly links to other stories and no article markup.
- ``live_blog``: JSON-LD ``LiveBlogPosting`` or a live-blog URL; a story, kept as content.
- ``article``: anything else.

Cookie banners sit on most real article pages, so consent and challenge vocabulary only
counts on a page whose own text is short (``SHORT_WORDS``): an article with a banner stays an
article.  Measured on tests/data/pages/types (bench/page_types.py).
"""

from __future__ import annotations

import re
from functools import cached_property
from urllib.parse import urlsplit

from lxml.html import HtmlElement

ARTICLE, CONSENT, CHALLENGE, SOFT_404, PAYWALL, LISTING, LIVE_BLOG = (
    "article", "consent_wall", "challenge", "soft_404", "paywall", "listing", "live_blog")
PAGE_TYPES = (ARTICLE, CONSENT, CHALLENGE, SOFT_404, PAYWALL, LISTING, LIVE_BLOG)
# Types that are not the story: their body never stands in for an article.
NOT_ARTICLES = frozenset({CONSENT, CHALLENGE, SOFT_404, PAYWALL, LISTING})

SHORT_WORDS = 150  # an interstitial's own text; real articles in the benchmark sets have more

_WORD = re.compile(r"\w+")

_CHALLENGE_TITLE = re.compile(
    r"^(just a moment|attention required|please wait|checking your browser|access denied|are you a robot|"
    r"security check|verify(ing)? you are (a )?human|human verification|bot verification|captcha|"
    r"one more step|pardon our interruption|robot check|ddos-guard|request unsuccessful)", re.I)
_CHALLENGE_TEXT = re.compile(
    r"(verify (that )?you are (a )?human|checking (if the site connection is secure|your browser)|"
    r"enable javascript and cookies to continue|complete the security check|unusual traffic from your "
    r"computer|are you a robot|prove you('re| are) not a robot|press (&|and) hold|needs to review the "
    r"security of your connection|bitte bestätigen sie, dass sie ein mensch sind|vérifiez que vous êtes "
    r"humain|why have i been blocked|request blocked)", re.I)
_CHALLENGE_MARKUP = re.compile(
    r"(challenges\.cloudflare\.com|cf-browser-verification|cf-challenge|challenge-form|cf_chl_|"
    r"g-recaptcha|h-captcha|hcaptcha\.com|captcha-delivery\.com|geo\.captcha|px-captcha|perimeterx|"
    r"_incapsula_resource|distil_r_captcha|ddos-guard|awswaf|sec-if-cpt)", re.I)

_CONSENT_TEXT = re.compile(
    r"(cookie|consent|gdpr|privacy (settings|preferences|choices|center|centre)|personalised ads|"
    r"personalized ads|accept all|reject all|manage (options|preferences|settings)|legitimate interest|"
    r"partners? (store|process)|we value your privacy|datenschutz|einwilligung|zustimmen|akzeptieren|"
    r"consentement|accepter|aceptar|consentimiento|acconsento|accetta|toestemming|before you continue)",
    re.I)
_CONSENT_URL = re.compile(r"(^|[./])(consent|cmp|privacy-?center|cookie)s?([./-]|$)|[?&](consent|gdpr)", re.I)
_CONSENT_MARKUP = re.compile(r"(sp_message_container|sp_message_iframe|onetrust|didomi|quantcast-choice|"
                             r"qc-cmp|truste|cookiebot|usercentrics|consent-form|consentui|fc-consent|"
                             r"cmp-container|gdpr-consent)", re.I)

_NOT_FOUND = re.compile(
    r"(\b404\b|page (was )?not found|not be found|can(no|')t (be )?found|couldn'?t (be )?found|could not be found|"
    r"doesn'?t exist|does not exist|no longer (exists|available)|page (is )?unavailable|nothing (was )?found|"
    r"seite (wurde )?nicht gefunden|página no encontrada|no se encontr|page (introuvable|non trouvée)|"
    r"pagina non trovata|pagina niet gevonden|nie znaleziono|sidan (kunde inte hittas|finns inte)|"
    r"страница не найдена|ページが見つかりません|页面不存在|找不到)", re.I)

_PAYWALL_TEXT = re.compile(
    r"(subscribe (now )?to (continue|read|keep|unlock|get)|subscribers? only|for subscribers|"
    r"already (a subscriber|have an account)|to continue reading|continue reading (with|by)|"
    r"this (article|story|content) is (for|reserved|exclusive|available)|unlock (this|the full)|"
    r"become a (member|subscriber)|start your (free )?trial|sign in to read|register to read|"
    r"abonnieren sie|nur für abonnenten|réservé aux abonnés|solo para suscriptores|riservato agli abbonati|"
    r"exclusivo para assinantes|premium (article|content))", re.I)
_PAYWALL_MARKUP = re.compile(r"(paywall|piano-|tp-modal|meteredcontent|subscriber-only|premium-content|"
                             r"regwall|article-locked|locked-content)", re.I)

_LIVE_URL = re.compile(r"(/live/|live-?blog|/liveblog|/live-updates|-live-updates|/as-it-happened|/live$)", re.I)
_LISTING_LD = ("CollectionPage", "ItemList", "SearchResultsPage", "Blog", "ProfilePage")
_ARTICLE_LD = re.compile(r"(Article|BlogPosting|Report|Review|Recipe|LiveBlogPosting)$")


_SLUG = re.compile(r"[^/]*[-_][^/]*[-_][^/]*[-_]|\d{4,}|\.(s?html?|php|aspx?|cms)$", re.I)


def _section_like(url: str | None) -> bool:
    """True for a URL that names a section rather than a story: at most two path segments, none
    of them a slug ("a-b-c-d"), an id (four digits or more) or a page file."""
    if not url:
        return False
    parts = urlsplit(url)
    segments = [x for x in parts.path.split("/") if x]
    if len(segments) > 2:
        return False
    return not any(_SLUG.search(seg) for seg in segments)


def _words(text: str) -> int:
    return len(_WORD.findall(text or ""))


def _head_text(tree: HtmlElement) -> tuple[str, str]:
    title_el = tree.find(".//title")
    title = " ".join((title_el.text_content() if title_el is not None else "").split())
    h1 = tree.find(".//h1")
    return title, " ".join((h1.text_content() if h1 is not None else "").split())


def _visible_text(tree: HtmlElement) -> str:
    body = tree.find(".//body")
    if body is None:
        return ""
    parts = []
    for el in body.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "noscript", "template"):
            continue
        if el.text:
            parts.append(el.text)
        if el.tail and el.getparent() is not None and el.getparent().tag not in ("script", "style"):
            parts.append(el.tail)
    return " ".join(" ".join(parts).split())


def _link_share(tree: HtmlElement, visible: str) -> tuple[float, int]:
    """Share of the body's visible words inside links, and the number of story-like links
    (anchors with four words or more of text)."""
    body = tree.find(".//body")
    if body is None:
        return 0.0, 0
    total = _words(visible)
    linked, stories = 0, 0
    for a in body.iter("a"):
        n = _words(a.text_content())
        linked += n
        stories += n >= 4
    return (linked / total if total else 0.0), stories


class PageFeatures:
    """What the classifier reads from the page's tree.  The costly parts (visible text, link
    share, attributes) are computed on first use: most articles never need them."""

    def __init__(self, tree: HtmlElement):
        self.tree = tree
        self.title, self.h1 = _head_text(tree)

    @cached_property
    def markup(self) -> str:
        """The class, id, src, action, name and data-sitekey attributes, as one string to search."""
        values = self.tree.xpath("//@class|//@id|//@src|//@action|//@name|//@data-sitekey", smart_strings=False)
        return " ".join(v[:400] for v in values[:20_000])

    @cached_property
    def visible(self) -> str:
        return _visible_text(self.tree)

    @cached_property
    def _links(self) -> tuple[float, int]:
        return _link_share(self.tree, self.visible)

    @property
    def link_share(self) -> float:
        """Share of the body's visible words inside links."""
        return self._links[0]

    @property
    def story_links(self) -> int:
        """Anchors with four words or more of text."""
        return self._links[1]


def page_features(tree: HtmlElement) -> PageFeatures:
    """Return the (lazily computed) features ``classify_page`` reads from ``tree``."""
    return PageFeatures(tree)


def classify_page(page: HtmlElement | PageFeatures, url: str | None, text: str, *,
                  ld_types: list[str] | tuple[str, ...] = (), og_type: str | None = None,
                  paywalled: bool = False) -> tuple[str, str]:
    """Return ``(page_type, signal)`` for a fetched page (one of ``PAGE_TYPES``).

    ``page`` is the parsed page or its ``page_features``; ``text`` the body the extractor kept;
    ``ld_types`` the JSON-LD ``@type`` values of the page; ``paywalled`` its
    ``isAccessibleForFree: false``.  Never raises.
    """
    f = page if isinstance(page, PageFeatures) else page_features(page)
    words = _words(text)
    title, h1 = f.title, f.h1
    short = words < SHORT_WORDS
    path = urlsplit(url).path if url else ""

    # --- challenge -----------------------------------------------------------------------
    if short:
        if _CHALLENGE_TITLE.search(title):
            return CHALLENGE, f"title {title[:60]!r} on a {words}-word page"
        if _words(f.visible) < 400:
            m = _CHALLENGE_MARKUP.search(f.markup)
            if m:
                return CHALLENGE, f"challenge markup {m.group(0)!r} on a {words}-word page"
            m = _CHALLENGE_TEXT.search(f.visible)
            if m:
                return CHALLENGE, f"text {m.group(0)!r} on a {words}-word page"

    # --- consent wall ------------------------------------------------------------------------
    if short:
        host = (urlsplit(url).hostname or "") if url else ""
        if url and _CONSENT_URL.search(host + path + "?" + (urlsplit(url).query or "")):
            return CONSENT, f"consent URL {host}{path[:40]}"
        # The body the extractor kept is the consent notice itself; or the page has hardly any
        # body and the rest of it talks consent.  A short article under a cookie banner (the
        # demo's 101-word Rheinblick story) has consent words on the page, not in its body.
        body_hits = {m.group(0).lower() for m in _CONSENT_TEXT.finditer(text[:20_000])}
        if len(body_hits) >= 2:
            return CONSENT, f"consent text {sorted(body_hits)[:3]} in the {words}-word body"

    # --- soft 404 -------------------------------------------------------------------------------
    if short:
        for where, value in (("title", title), ("h1", h1)):
            m = _NOT_FOUND.search(value)
            if m:
                return SOFT_404, f"{where} {value[:60]!r} on a {words}-word page"
        m = _NOT_FOUND.search(text[:600])
        if m and words < 60:
            return SOFT_404, f"text {m.group(0)!r} on a {words}-word page"

    # --- paywall teaser ---------------------------------------------------------------------------
    if words < 2 * SHORT_WORDS:
        if paywalled:
            return PAYWALL, f"isAccessibleForFree=false, {words}-word body"
        m = _PAYWALL_TEXT.search(f.visible[:30_000]) if short else None
        if m and _PAYWALL_MARKUP.search(f.markup):
            return PAYWALL, f"text {m.group(0)!r}, {words}-word body"

    # --- consent wall, from the page around a near-empty body (after paywall: a subscriber
    # teaser under a cookie banner is a paywall) ---------------------------------------------
    if words < 50:
        hits = {m.group(0).lower() for m in _CONSENT_TEXT.finditer(f.visible[:20_000])}
        if len(hits) >= 3 or (hits and _CONSENT_MARKUP.search(f.markup)):
            return CONSENT, f"consent text {sorted(hits)[:3]} on a page with a {words}-word body"

    # --- live blog (a story: kept as content) ---------------------------------------------------
    if "LiveBlogPosting" in ld_types:
        return LIVE_BLOG, "json-ld LiveBlogPosting"
    if _LIVE_URL.search(path):
        return LIVE_BLOG, f"URL {path[:60]}"

    # --- listing --------------------------------------------------------------------------------
    # Only on a section-like URL (home, /news/, /tag/x, /search): short real articles sit in heavy
    # navigation too (on the date bench, 22 of 200 articles were "mostly links" with no URL test).
    has_article_ld = any(_ARTICLE_LD.search(t) for t in ld_types)
    if _section_like(url) and not has_article_ld:
        listing_ld = [t for t in ld_types if t in _LISTING_LD]
        if listing_ld:
            return LISTING, f"json-ld {listing_ld[0]} on {path or '/'}"
        share, stories = f.link_share, f.story_links
        if share > 0.35 and stories >= 10 and (og_type or "website").lower() != "article":
            return LISTING, f"{share:.0%} of the words in links, {stories} story links on {path or '/'}"
    return ARTICLE, f"{words}-word body" + (", json-ld article" if has_article_ld else "")


__all__ = ["ARTICLE", "CHALLENGE", "CONSENT", "LISTING", "LIVE_BLOG", "NOT_ARTICLES", "PAGE_TYPES", "PAYWALL",
           "PageFeatures", "SOFT_404", "classify_page", "page_features"]
