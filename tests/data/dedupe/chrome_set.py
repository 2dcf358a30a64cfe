"""A stress set for near-duplicates behind heavy same-site chrome (issue 14, build 4).

Aggregator and scraper sites put long identical headers, "recommended" headline
blocks and footers around every story in ``content:encoded``; compared whole, two
short stories of one such site share most of their shingles. This generator writes
``sites`` sites x ``per_site`` stories, each inside its site's chrome (a fixed header
and footer, and a block of 8 headlines drawn from the site's own pool), then copies
of some stories on other sites — truncated, re-headlined, captioned, in the other
site's chrome — later in the stream. Every text is labelled with its story.

Stories are built from sentence templates over modest vocabularies, so unrelated
stories share the odd 5-word phrase as real news does ("said in a statement on").

    generate(sites=15, per_site=400, seed=1) -> list of articles.extracted-like dicts with "label"
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

_FIRST = ("Anna Maria Lena Omar Yusuf Ines Pavel Greta Tomas Amara Kofi Hana Diego Lucia Ravi Mei Jonas Elif "
          "Nadia Samuel Irene Viktor Chloe Dmitri Priya Felix Zara Hugo Leila Marco").split()
_LAST = ("Berg Novak Okafor Lindqvist Haddad Moreau Tanaka Rossi Kowalski Mensah Ortega Ivanova Schultz Byrne "
         "Dubois Yilmaz Costa Nakamura Fischer Kaur Petrov Almeida Keane Sato Romero Weber Nilsen Varga").split()
_PLACES = ("Halden Marlow Ostrava Tarvin Pelham Corby Alderton Brindle Kestrel Bay Dunmore Ashford Ravenna "
           "Lowick Saltmarsh Greyfield Norbury Eastleigh Wendover Castlerock Millbrook Fenwick Harrow Quarry "
           "Thornbury Westport Larch Hill Stanmore Kilbride Penrith").split()
_ORGS = ("the city council|the regional water board|the health ministry|a local hospital trust|the port authority|"
         "the national rail operator|the state university|a logistics firm|the teachers' union|the energy regulator|"
         "a wind farm developer|the police federation|the county court|the housing association|a biotech startup|"
         "the football club|the airport operator|the chamber of commerce|a steel maker|the fire service").split("|")
_NOUNS = ("budget plan|bridge repair|school merger|bus route|flood barrier|housing scheme|pay deal|tax rebate|"
          "clinic closure|stadium project|recycling contract|rail timetable|tram extension|water tariff|"
          "library reopening|hospital wing|fishing quota|parking charge|solar park|ferry service|cycle lane|"
          "harbour dredging|museum loan|pension reform|broadband rollout").split("|")
_VERBS = ("approved|rejected|delayed|announced|criticised|defended|reviewed|suspended|expanded|postponed|"
          "questioned|welcomed|challenged|funded|cancelled").split("|")
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_NUM = [str(n) for n in (3, 7, 12, 15, 18, 24, 31, 40, 46, 52, 60, 75, 88, 120, 250, 400, 1200, 3500)]

_TEMPLATES = [
    "{org} {verb} the {noun} on {day}, a decision that affects about {num} households in {place}.",
    "{person}, who has worked on the {noun} for {num} years, said the plan had been {verb} too quickly.",
    "Officials in {place} said in a statement on {day} that the {noun} would cost roughly {num} million.",
    "Residents of {place} asked {org} to explain why the {noun} was {verb} without a public hearing.",
    "{person} told reporters in {place} that {org} had not consulted the people most affected.",
    "The {noun} was first proposed {num} months ago, when {org} warned of rising costs in {place}.",
    "According to {person}, the {noun} could be {verb} again if the figures do not improve by {day}.",
    "Critics including {person} argue that {org} has {verb} similar projects in {place} before.",
    "A spokesperson for {org} declined to comment on the {noun} when contacted on {day}.",
    "{num} people attended a meeting in {place} on {day}, where {person} presented an alternative {noun}.",
    "The vote on the {noun} passed by {num} votes to {num2}, with {person} abstaining.",
    "Local businesses in {place} said the {noun} had already {verb} their plans for the summer.",
    "{person} said the next step would be a review by {org}, expected within {num} weeks.",
    "Neighbouring {place2} has {verb} a comparable {noun}, and {person} pointed to its results.",
]


def _person(r: random.Random) -> str:
    return f"{r.choice(_FIRST)} {r.choice(_LAST)}"


def _sentence(r: random.Random, cast: dict) -> str:
    t = r.choice(_TEMPLATES).format(
        org=r.choice(cast["orgs"]), verb=r.choice(_VERBS), noun=cast["noun"], day=r.choice(_DAYS),
        num=r.choice(_NUM), num2=r.choice(_NUM), place=cast["place"], place2=r.choice(_PLACES),
        person=r.choice(cast["people"]))
    return t[0].upper() + t[1:]


def story(r: random.Random, words: int) -> tuple[str, list[str]]:
    """A headline and paragraphs of about ``words`` words."""
    cast = {"place": r.choice(_PLACES), "noun": r.choice(_NOUNS), "orgs": r.sample(_ORGS, 2),
            "people": [_person(r) for _ in range(3)]}
    title = f"{cast['place']} {cast['noun']} {r.choice(_VERBS)} as {cast['people'][0]} {r.choice(['speaks out', 'responds', 'warns', 'steps in'])}"
    paras: list[str] = []
    n = 0
    while n < words:
        para = " ".join(_sentence(r, cast) for _ in range(r.randint(2, 3)))
        paras.append(para)
        n += len(para.split())
    return title, paras


def site_chrome(r: random.Random, i: int) -> dict:
    name = f"{r.choice(_PLACES)} {r.choice(['Gazette', 'Courier', 'Daily', 'Herald', 'Post', 'Echo', 'Times'])} {i}"
    sections = " | ".join(r.sample(["Home", "News", "Politics", "Business", "Sport", "Culture", "Opinion",
                                    "Weather", "Travel", "Video", "Podcasts", "Puzzles", "Obituaries"], 9))
    header = [f"{name} | {sections} | Subscribe | Sign in",
              f"Breaking news and analysis from {name}, your trusted source for local and national stories since "
              f"{r.randint(1890, 2015)}. Download our app and never miss an update."]
    footer = [f"Copyright {name}. All rights reserved. Registered office: {r.randint(1, 99)} {r.choice(_PLACES)} Road.",
              "Terms of use | Privacy policy | Cookie settings | Contact us | Advertise with us | Careers | "
              "Corrections and complaints | Accessibility statement | Sitemap",
              f"Sign up for the {name} morning briefing: the day's top stories in your inbox every morning, free. "
              "Follow us on social media for breaking news, video and live updates from our reporters."]
    pool = [story(r, 1)[0] for _ in range(60)]  # the site's own teaser headlines
    return {"name": name, "host": f"site{i}.example", "header": header, "footer": footer, "pool": pool}


def wrap(r: random.Random, site: dict, title: str, paras: list[str]) -> str:
    recommended = ["Recommended for you"] + r.sample(site["pool"], 8)
    more = ["Most read"] + r.sample(site["pool"], 5)
    blocks = site["header"] + [title] + paras + recommended + more + site["footer"]
    return "\n\n".join(blocks)


def generate(sites: int = 15, per_site: int = 400, seed: int = 1, copy_share: float = 0.06) -> list[dict]:
    """Articles in stream order, each with ``label`` (its story); see the module docstring."""
    r = random.Random(seed)
    chrome = [site_chrome(r, i) for i in range(sites)]
    t0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
    originals: list[tuple[int, str, list[str], str]] = []
    stream: list[tuple[float, dict]] = []
    for s in range(sites):
        for k in range(per_site):
            title, paras = story(r, r.choice([90, 120, 160, 220, 300, 450, 650]))
            label = f"s{s}-{k}"
            pos = r.random()
            stream.append((pos, _article(chrome[s], label, label, wrap(r, chrome[s], title, paras))))
            originals.append((s, title, paras, label))
            if r.random() < copy_share:
                for c in range(r.choice([1, 1, 2])):
                    other = r.choice([x for x in range(sites) if x != s])
                    cp = list(paras)
                    how = r.random()
                    if how < 0.5:  # truncated
                        keep = max(1, round(len(cp) * r.uniform(0.4, 0.9)))
                        cp = cp[:keep]
                    if r.random() < 0.6:  # captioned
                        for _ in range(r.randint(1, 3)):
                            cp.insert(r.randrange(len(cp) + 1),
                                      f"Photo: {_person(r)} in {r.choice(_PLACES)} on {r.choice(_DAYS)}. (Agency)")
                    new_title = title if r.random() < 0.4 else f"{r.choice(['WATCH:', 'UPDATE:', 'Explained:', ''])} " \
                        f"{story(r, 1)[0]}".strip()  # re-headlined
                    stream.append((pos + r.uniform(0.001, 0.2),
                                   _article(chrome[other], f"{label}-c{c}", label, wrap(r, chrome[other], new_title, cp))))
    stream.sort(key=lambda x: x[0])
    out = []
    for n, (_, a) in enumerate(stream):
        a["fetched_at"] = (t0 + timedelta(seconds=20 * n)).isoformat()
        out.append(a)
    return out


def _article(site: dict, key: str, label: str, text: str) -> dict:
    url = f"https://{site['host']}/news/{key}"
    return {"id": key, "url": url, "canonical_url": url, "feed_url": f"https://{site['host']}/feed",
            "source": site["name"], "text": text, "label": label}
