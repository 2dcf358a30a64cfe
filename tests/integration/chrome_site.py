"""Three sites on loopback that wrap every story in their own identical chrome (issue 14, build 4).

Aggregator and scraper sites put the same header, "related" headline list and footer
around each story in ``content:encoded``; their article pages are gone (404), so extract
falls back to the feed's content and the chrome reaches dedupe. Each site is its own host
(127.0.0.1, .2, .3: ``ChromeFilter`` learns per host).

Phase 1: two long stories per site (a site's first two stories are compared whole: its
chrome is too small a share of them to merge them). Phase 2: three short stories per site,
whose chrome is nearly half their text (compared whole, stories of one site look like
copies of one another), and a copy on each site of another site's phase-1 story
(truncated or captioned, re-headlined, in the copying site's chrome).
"""

from __future__ import annotations

import html
from email.utils import format_datetime

from integration.identity_site import Site, at, stories

STORIES = stories()
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
NAMES = ("Halden Gazette", "Marlow Courier", "Ostrava Daily")
LONG = (("kim-train", "fed-hold"), ("kim-missile", "fed-banks"), ("council-stadium", "quake-aid"))
SHORT = (("quake-toll", "council-housing", "vance-layoffs"), ("vance-launch", "drug-approval", "mars-rover"),
         ("museum-heist", "rail-strike", "wildfire-ca"))
# copier site -> (original site, story, how): every site copies one other site's phase-1 story
COPIES = {1: (0, "kim-train", "truncated"), 2: (1, "fed-banks", "captioned"), 0: (2, "quake-aid", "truncated")}
SHORT_WORDS = 150


def chrome(i: int) -> tuple[list[str], list[str]]:
    """Site ``i``'s (header, footer) blocks; the footer holds its related-headline list."""
    name = NAMES[i]
    header = [f"{name} | Home | News | Politics | Business | Sport | Culture | Opinion | Subscribe | Sign in",
              f"Breaking news and analysis from the {name}, your trusted source for local and national stories "
              f"since {1890 + 7 * i}. Download our app and never miss an update from our newsroom."]
    related = "Related stories: " + " · ".join(
        f"{w} {name.split()[0]} {n}" for w, n in zip(
            ("Council approves bridge repair in", "Rail timetable changes hit commuters in",
             "New clinic opens its doors in", "Harbour dredging delayed again in",
             "Teachers vote on pay deal in", "Ferry service resumes between islands near"),
            ("on Monday", "this week", "after a long wait", "until spring", "next month", "today")))
    footer = [related,
              f"Copyright {name}. All rights reserved. Terms of use | Privacy policy | Cookie settings | "
              "Contact us | Advertise with us | Careers | Corrections and complaints"]
    return header, footer


def short(paras: list[str]) -> list[str]:
    out, n = [], 0
    for p in paras:
        words = p.split()
        if n + len(words) > SHORT_WORDS:
            out.append(" ".join(words[:SHORT_WORDS - n]))
            break
        out.append(p)
        n += len(words)
    return out


def copy_of(key: str, how: str) -> tuple[str, list[str]]:
    title, paras = STORIES[key]
    if how == "truncated":
        paras = paras[:max(2, round(len(paras) * 0.6))]
    else:
        paras = paras[:2] + ["Photo: rescue workers and officials at the scene on Sunday. (Agency)"] + paras[2:]
    return "UPDATE: " + title.split(":")[-1].strip(), paras


def entries(phase: int) -> dict[int, list[dict]]:
    """Site -> the items its feed lists in ``phase`` (1 or 2): {key, title, paras, label}; phase 2
    lists phase 1's items too (a feed keeps its recent items)."""
    out: dict[int, list[dict]] = {i: [] for i in range(len(HOSTS))}
    for i in range(len(HOSTS)):
        for key in LONG[i]:
            title, paras = STORIES[key]
            out[i].append({"key": key, "title": title, "paras": paras, "label": key})
        if phase == 2:
            for key in SHORT[i]:
                title, paras = STORIES[key]
                out[i].append({"key": key, "title": title, "paras": short(paras), "label": key})
            _, key, how = COPIES[i]
            title, paras = copy_of(key, how)
            out[i].append({"key": f"copy-of-{key}", "title": title, "paras": paras, "label": key})
    return out


def content(i: int, title: str, paras: list[str]) -> str:
    header, footer = chrome(i)
    return "".join(f"<p>{html.escape(b)}</p>" for b in header + [title] + paras + footer)


def rss(i: int, site: Site, items: list[dict]) -> bytes:
    out = ["<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
           "xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel>"
           f"<title>{html.escape(NAMES[i])}</title><link>{site.url('/')}</link><description>d</description>"]
    for n, it in enumerate(items):
        link = site.url(f"/news/{it['key']}")  # the page is gone: 404
        out.append(f"<item><title>{html.escape(it['title'])}</title><link>{html.escape(link)}</link>"
                   f"<guid isPermaLink='true'>{html.escape(link)}</guid>"
                   f"<pubDate>{format_datetime(at(10 * i + n))}</pubDate>"
                   f"<description>{html.escape(it['title'])}</description>"
                   f"<content:encoded>{html.escape(content(i, it['title'], it['paras']))}</content:encoded></item>")
    out.append("</channel></rss>")
    return "".join(out).encode("utf-8")


def publish(sites: list[Site], phase: int) -> list[dict]:
    """Serve ``phase``'s feeds; returns the feeds for the config."""
    for i, items in entries(phase).items():
        sites[i].feed("/feed.xml", rss(i, sites[i], items))
    return [{"url": s.url("/feed.xml"), "name": NAMES[i]} for i, s in enumerate(sites)]


def expected(sites: list[Site]) -> tuple[dict[str, str], dict[str, str]]:
    """(story key -> id of its one record on articles.unique, copy id -> id of its original)."""
    from pipeline.urls import article_id, canonicalize

    def aid(i: int, key: str) -> str:
        return article_id(canonicalize(sites[i].url(f"/news/{key}")))
    unique = {key: aid(i, key) for i in range(len(HOSTS)) for key in LONG[i] + SHORT[i]}
    copies = {aid(i, f"copy-of-{key}"): unique[key] for i, (_, key, _) in COPIES.items()}
    return unique, copies
