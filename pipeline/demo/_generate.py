"""Render the demo sites (``_content.py``) into ``data/``: HTML pages, feeds, images.

    python -m pipeline.demo._generate      # rewrites pipeline/demo/data/

The generated files are committed: the demo serves them as they are, so this
script only runs when the content changes.  URLs in the files start with the
placeholder ``{base}``, which ``DemoServer`` replaces with its own address.

Layout::

    data/feeds.json                 the feeds: path, name, tags, format
    data/<site>/<page>.html         article pages (wrapped in each site's clutter)
    data/<site>/rss.xml|atom.xml|feed.json
    data/static/img/*.svg           placeholder photos
    data/robots.txt
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path

from pipeline.demo._content import ARTICLES, DISCLAIMER, FURNITURE, GONE, SITES, TEASERS

DATA = Path(__file__).with_name("data")
BASE = "{base}"

FEED_FILES = {"rss": "rss.xml", "aggregator": "feed/index.xml", "atom": "atom.xml", "json": "feed.json"}


def page_url(art: dict) -> str:
    return f"{BASE}/{art['site']}/{art['path']}"


def file_for(site: str, path: str) -> Path:
    """Where the page at ``/<site>/<path>`` is stored (the server resolves URLs the same way)."""
    if path.endswith("/"):
        path += "index.html"
    elif not path.endswith(".html"):
        path += ".html"
    return DATA / site / path


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _e(text: str) -> str:
    return escape(text, quote=True)


def _jsonld(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1).replace("</", "<\\/")


# --- pages ------------------------------------------------------------------------------

def _block(b, site: str, lang: str) -> str:
    if isinstance(b, str):
        return f"<p>{_e(b)}</p>"
    kind = b[0]
    if kind == "h2":
        return f"<h2>{_e(b[1])}</h2>"
    if kind == "quote":
        return f"<blockquote><p>{_e(b[1])}</p></blockquote>"
    if kind == "figure":
        _, img, caption, credit = b
        return (f'<figure class="inline-photo"><img src="{BASE}/static/img/{img}" alt="" width="800" height="450">'
                f'<figcaption>{_e(caption)} <span class="credit">{_e(credit)}</span></figcaption></figure>')
    if kind == "photo":
        # A photo as syndicated copies carry it: the image, then caption and credit
        # as plain paragraphs (which is how they end up inside extracted text).
        _, img, caption, credit = b
        return (f'<div class="img-wrap"><img src="{BASE}/static/img/{img}" alt="" width="800" height="450"></div>\n'
                f"<p>{_e(caption)}</p>\n<p>{_e(credit)}</p>")
    if kind == "line":  # a prompt or label that sits in the body as a paragraph of its own
        return f"<p>{_e(b[1])}</p>"
    if kind == "teaser":
        _, label, headline, href = b
        return f'<p>{_e(label)} <a href="{BASE}/{site}/{href}">{_e(headline)}</a></p>'
    if kind == "pasted":
        return f"<p><strong>{_e(b[1])}</strong></p>"
    if kind == "ad":
        label = {"de": "Anzeige", "fr": "Publicité", "es": "Publicidad"}.get(lang, "Advertisement")
        return f'<div class="ad-slot" data-slot="mid-article"></div>\n<p>{label}</p>'
    if kind == "raw":
        return b[1]
    raise ValueError(f"unknown block {kind!r}")


def _share(f: dict, url: str) -> str:
    return (f'<div class="share-bar"><span>{_e(f["share"])}</span>'
            f'<a class="share fb" href="https://www.facebook.com/sharer/sharer.php?u={url}">Facebook</a>'
            f'<a class="share x" href="https://x.com/intent/post?url={url}">X</a>'
            f'<a class="share wa" href="https://wa.me/?text={url}">WhatsApp</a>'
            f'<a class="share mail" href="mailto:?subject=&amp;body={url}">Email</a>'
            f'<button class="copy-link" type="button">{_e(f["copy"])}</button></div>')


def _comment_form() -> str:
    return """<div id="comments" class="comments-area">
<div id="respond" class="comment-respond">
<h3 id="reply-title" class="comment-reply-title">Leave a Reply <small><a rel="nofollow" id="cancel-comment-reply-link" href="#respond" style="display:none;">Cancel reply</a></small></h3>
<form action="/wp-comments-post.php" method="post" id="commentform" class="comment-form">
<p class="comment-notes"><span id="email-notes">Your email address will not be published.</span> Required fields are marked <span class="required">*</span></p>
<p class="comment-form-comment"><label for="comment">Comment <span class="required">*</span></label> <textarea id="comment" name="comment" cols="45" rows="8" required></textarea></p>
<p class="comment-form-author"><label for="author">Name <span class="required">*</span></label> <input id="author" name="author" type="text" size="30" required></p>
<p class="comment-form-email"><label for="email">Email <span class="required">*</span></label> <input id="email" name="email" type="email" size="30" required></p>
<p class="comment-form-url"><label for="url">Website</label> <input id="url" name="url" type="url" size="30"></p>
<p class="comment-form-cookies-consent"><input id="wp-comment-cookies-consent" name="wp-comment-cookies-consent" type="checkbox" value="yes"> <label for="wp-comment-cookies-consent">Save my name, email, and website in this browser for the next time I comment.</label></p>
<p class="form-submit"><input name="submit" type="submit" id="submit" class="submit" value="Post Comment"></p>
</form>
</div>
</div>"""


def render_page(art: dict) -> str:
    site = SITES[art["site"]]
    lang = art.get("lang", site["lang"])
    f = FURNITURE[lang]
    url = page_url(art)
    home = f"{BASE}/{art['site']}/"
    pub = _dt(art["published"])
    image = f"{BASE}/static/img/{art['image']}"
    feed_href = f"{BASE}/{art['site']}/{FEED_FILES[site['feed']]}"
    feed_type = {"rss": "application/rss+xml", "aggregator": "application/rss+xml",
                 "atom": "application/atom+xml", "json": "application/feed+json"}[site["feed"]]
    ld = {
        "@context": "https://schema.org", "@type": "NewsArticle",
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "headline": art["title"], "description": art["dek"], "image": [image],
        "datePublished": art["published"], "dateModified": art["published"], "inLanguage": lang,
        "author": [{"@type": "Person" if "Newsdesk" not in art["author"] else "Organization",
                    "name": art["author"]}],
        "publisher": {"@type": "Organization", "name": site["name"],
                      "logo": {"@type": "ImageObject", "url": f"{BASE}/static/img/logo.svg"}},
        "articleSection": art["section"], "keywords": art["tags"],
    }
    if art.get("paywall"):
        ld["isAccessibleForFree"] = False
        ld["hasPart"] = {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": ".paywalled"}
    crumbs = {"@context": "https://schema.org", "@type": "BreadcrumbList", "itemListElement": [
        {"@type": "ListItem", "position": 1, "name": f["home"], "item": home},
        {"@type": "ListItem", "position": 2, "name": art["section"], "item": home + "section/"}]}
    nav = "".join(f'<li><a href="{home}section/{i}">{_e(n)}</a></li>' for i, n in enumerate(site["nav"]))
    teasers = TEASERS[lang]
    related = "".join(f'<li><a href="{home}teaser/{i}">{_e(t)}</a></li>' for i, t in enumerate(teasers[:4]))
    most_read = "".join(f'<li><a href="{home}popular/{i}">{_e(t)}</a></li>' for i, t in enumerate(teasers[::-1][:3]))
    body = "\n".join(_block(b, art["site"], lang) for b in art["body"])
    if art.get("paywall"):
        body += ('\n<div class="paywalled" hidden></div>\n<div class="paywall-prompt"><h3>Subscribe to keep '
                 'reading</h3><p>This story is for subscribers. Get unlimited access from \u00a31 a week.</p>'
                 '<a class="btn" href="#">Subscribe now</a> <a href="#">Log in</a></div>')
    agency = art.get("agency")
    byline = f'{_e(f["by"])} <a rel="author" href="{home}author/{_e(art["author"].lower().replace(" ", "-"))}">' \
             f'{_e(art["author"])}</a>' + (f", {_e(agency)}" if agency else "")
    if art["site"] == "marketpulse" and art.get("wire"):
        src = next(a for a in ARTICLES if a.get("wire") and a["site"] == art.get("aggregated_from"))
        # The aggregator's theme: a "Source link" label (the link is added by script),
        # the disclaimer, and the comment form inside the post body.
        body += (f'\n<p class="source" data-href="{page_url(src)}">Source link</p>'
                 f"\n<p>{_e(DISCLAIMER)}</p>\n{_comment_form()}")
    footer_links = "".join(f'<li><a href="{home}page/{i}">{_e(x)}</a></li>' for i, x in enumerate(f["footer"]))
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(art["title"])} | {_e(site["name"])}</title>
<meta name="description" content="{_e(art["dek"])}">
<meta name="author" content="{_e(art["author"])}">
<link rel="canonical" href="{url}">
<link rel="alternate" type="{feed_type}" title="{_e(site["name"])}" href="{feed_href}">
<meta property="og:type" content="article">
<meta property="og:site_name" content="{_e(site["name"])}">
<meta property="og:title" content="{_e(art["title"])}">
<meta property="og:description" content="{_e(art["dek"])}">
<meta property="og:url" content="{url}">
<meta property="og:image" content="{image}">
<meta property="og:locale" content="{lang}">
<meta property="article:published_time" content="{art["published"]}">
<meta property="article:section" content="{_e(art["section"])}">
<meta name="twitter:card" content="summary_large_image">
<script type="application/ld+json">{_jsonld(ld)}</script>
<script type="application/ld+json">{_jsonld(crumbs)}</script>
<script>window.dataLayer=window.dataLayer||[];dataLayer.push({{"section":"{_e(art["section"])}"}});</script>
</head>
<body class="article-page">
<div id="cookie-consent" class="cookie-banner" role="dialog" aria-live="polite">
<p>{_e(f["cookie"])}</p>
<button type="button" class="accept">{_e(f["accept"])}</button> <button type="button" class="manage">{_e(f["manage"])}</button>
</div>
<header class="site-header">
<div class="top-bar"><span class="date">{pub.strftime("%d.%m.%Y")}</span> <a class="subscribe" href="{home}subscribe">{_e(f["subscribe"])}</a></div>
<a class="logo" href="{home}">{_e(site["name"])}</a> <span class="tagline">{_e(site["tagline"])}</span>
<nav class="main-nav" aria-label="Main"><ul>{nav}</ul></nav>
<form class="search" action="{home}search" role="search"><input type="search" name="q" placeholder="{_e(f["search"])}"></form>
</header>
<main id="content">
<article class="story">
<nav class="breadcrumb"><a href="{home}">{_e(f["home"])}</a> &rsaquo; <a href="{home}section/">{_e(art["section"])}</a></nav>
<header class="story-header">
<h1 class="headline">{_e(art["title"])}</h1>
<p class="standfirst">{_e(art["dek"])}</p>
<div class="byline">{byline} &middot; <time datetime="{art["published"]}">{pub.strftime("%d %B %Y, %H:%M")} UTC</time></div>
</header>
{_share(f, url)}
<div class="story-body">
{body}
</div>
<div class="story-tags">{_e(f["tags"])}: {" ".join(f'<a href="{home}tag/{_e(t)}">{_e(t)}</a>' for t in art["tags"])}</div>
{_share(f, url)}
</article>
<aside class="related"><h2>{_e(f["related"])}</h2><ul>{related}</ul></aside>
<aside class="newsletter-box"><p>{_e(f["newsletter"])}</p><form><input type="email" placeholder="email"><button>{_e(f["subscribe"])}</button></form></aside>
<section class="most-read"><h2>{_e(f["most_read"])}</h2><ol>{most_read}</ol></section>
</main>
<footer class="site-footer">
<ul class="footer-links">{footer_links}</ul>
<p class="copyright">&copy; {pub.year} {_e(site["name"])}. {_e(f["rights"])}</p>
</footer>
</body>
</html>
"""


# --- feeds --------------------------------------------------------------------------------

def _site_articles(site: str) -> list[dict]:
    items = [a for a in ARTICLES if a["site"] == site] + [dict(g, gone=True) for g in GONE if g["site"] == site]
    return sorted(items, key=lambda a: a["published"], reverse=True)


def _summary(a: dict) -> str:
    return a.get("dek") or a.get("summary") or ""


def render_rss(site_key: str) -> str:
    site = SITES[site_key]
    home = f"{BASE}/{site_key}/"
    arts = _site_articles(site_key)
    aggregator = site["feed"] == "aggregator"
    items = []
    for a in arts:
        link = page_url(a)
        if site_key == "harborledger":  # this CMS tags every feed link for analytics
            link += "?utm_source=rss&amp;utm_medium=feed&amp;utm_campaign=" + a["path"].split("/")[0]
        parts = [f"<title>{_e(a['title'])}</title>", f"<link>{link}</link>",
                 f'<guid isPermaLink="false">{site["domain"]}:{a["path"].strip("/")}</guid>',
                 f"<pubDate>{format_datetime(_dt(a['published']))}</pubDate>",
                 f"<dc:creator>{_e(a['author'])}</dc:creator>"]
        parts += [f"<category>{_e(t)}</category>" for t in a.get("tags", [])]
        if aggregator:
            words = " ".join(p for p in a["body"] if isinstance(p, str)).split()
            parts.append(f"<description><![CDATA[{' '.join(words[:45])} [&#8230;]]]></description>")
            parts.append(f"<content:encoded><![CDATA[{_flatten(a)}]]></content:encoded>")
        else:
            parts.append(f"<description>{_e(_summary(a))}</description>")
        if a.get("image"):
            parts.append(f'<media:content url="{BASE}/static/img/{a["image"]}" medium="image" type="image/svg+xml"/>')
        items.append("<item>\n  " + "\n  ".join(parts) + "\n</item>")
    lang = {"de": "de-DE", "en": "en"}.get(site["lang"], site["lang"])
    newest = format_datetime(_dt(arts[0]["published"]))
    self_url = f"{home}{FEED_FILES[site['feed']]}"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:media="http://search.yahoo.com/mrss/">
<channel>
<title>{_e(site["name"])}</title>
<link>{home}</link>
<atom:link href="{self_url}" rel="self" type="application/rss+xml"/>
<description>{_e(site["tagline"])}</description>
<language>{lang}</language>
<lastBuildDate>{newest}</lastBuildDate>
<generator>{"WordPress 6.4" if aggregator else "Demo CMS"}</generator>
<ttl>15</ttl>
{chr(10).join(items)}
</channel>
</rss>
"""


def _flatten(a: dict) -> str:
    """The whole story as an aggregator's feed carries it: one blob with <br> breaks,
    captions and credits inline, then the source link, the disclaimer and the
    WordPress "appeared first on" footer."""
    lines = []
    for b in a["body"]:
        if isinstance(b, str):
            lines.append(_e(b))
        elif b[0] in ("photo", "figure"):
            lines += [_e(b[2]), _e(b[3])]
    html = "<div>" + "<br /><br />".join(lines) + "</div>"
    if a.get("wire"):
        src = next(x for x in ARTICLES if x.get("wire") and x["site"] == a.get("aggregated_from"))
        html += f'<p><a href="{page_url(src)}">Source link</a></p><p>{_e(DISCLAIMER)}</p>'
    html += (f'<p>The post <a href="{page_url(a)}">{_e(a["title"])}</a> appeared first on '
             f'<a href="{BASE}/marketpulse/">Market Pulse</a>.</p>')
    return html


def render_atom(site_key: str) -> str:
    site = SITES[site_key]
    home = f"{BASE}/{site_key}/"
    arts = _site_articles(site_key)
    entries = []
    for a in arts:
        lang = a.get("lang", site["lang"])
        cats = "".join(f'\n  <category term="{_e(t)}"/>' for t in a.get("tags", []))
        entries.append(f"""<entry xml:lang="{lang}">
  <id>tag:{site["domain"]},2024:{a["path"].strip("/")}</id>
  <title type="text">{_e(a["title"])}</title>
  <link rel="alternate" type="text/html" href="{page_url(a)}"/>
  <published>{a["published"]}</published>
  <updated>{a["published"]}</updated>
  <author><name>{_e(a["author"])}</name></author>{cats}
  <summary type="html">{_e("<p>" + _e(_summary(a)) + "</p>")}</summary>
</entry>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{site["lang"]}">
<id>tag:{site["domain"]},2024:feed</id>
<title>{_e(site["name"])}</title>
<subtitle>{_e(site["tagline"])}</subtitle>
<link rel="self" type="application/atom+xml" href="{home}{FEED_FILES["atom"]}"/>
<link rel="alternate" type="text/html" href="{home}"/>
<updated>{arts[0]["published"]}</updated>
<generator>Demo CMS</generator>
{chr(10).join(entries)}
</feed>
"""


def render_json_feed(site_key: str) -> str:
    site = SITES[site_key]
    home = f"{BASE}/{site_key}/"
    items = []
    for a in _site_articles(site_key):
        item = {"id": f"{site['domain']}/{a['path']}", "url": page_url(a), "title": a["title"],
                "summary": _summary(a), "content_html": f"<p>{_e(_summary(a))}</p>",
                "date_published": a["published"], "authors": [{"name": a["author"]}], "tags": a.get("tags", [])}
        if a.get("image"):
            item["image"] = f"{BASE}/static/img/{a['image']}"
        items.append(item)
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": site["name"], "home_page_url": home,
            "feed_url": f"{home}{FEED_FILES['json']}", "description": site["tagline"], "language": site["lang"],
            "items": items}
    return json.dumps(feed, ensure_ascii=False, indent=2) + "\n"


def _svg(label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="450" viewBox="0 0 800 450">'
            f'<rect width="800" height="450" fill="#8aa4b8"/><text x="400" y="235" font-family="sans-serif" '
            f'font-size="32" text-anchor="middle" fill="#fff">{_e(label)}</text></svg>\n')


def generate(out: Path = DATA) -> list[Path]:
    """Rewrite ``out``. Returns the files written."""
    if out.exists():
        shutil.rmtree(out)
    written = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for art in ARTICLES:
        write(out / file_for(art["site"], art["path"]).relative_to(DATA), render_page(art))
    feeds = []
    for key, site in SITES.items():
        kind = site["feed"]
        text = render_json_feed(key) if kind == "json" else render_atom(key) if kind == "atom" else render_rss(key)
        rel = f"{key}/{FEED_FILES[kind]}"
        write(out / rel, text)
        feeds.append({"path": rel, "name": site["name"], "tags": site["tags"], "format": kind,
                      "language": site["lang"]})
    write(out / "feeds.json", json.dumps({"feeds": feeds}, indent=2) + "\n")
    images = {a["image"] for a in ARTICLES if a.get("image")} | {"winch.svg", "logo.svg"}
    for img in sorted(images):
        write(out / "static" / "img" / img, _svg(img.rsplit(".", 1)[0]))
    write(out / "robots.txt", "User-agent: *\nAllow: /\n")
    return written


if __name__ == "__main__":
    files = generate()
    print(f"wrote {len(files)} files under {DATA}")
