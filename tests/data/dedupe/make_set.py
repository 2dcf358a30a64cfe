"""Generate the labelled dedupe set from ``stories.txt`` (deterministic: seed 5).

    python tests/data/dedupe/make_set.py   # rewrites labelled.jsonl next to this file

Each story is published by its "original" site and copied by several others, each
copy made with general transformations seen on syndication sites: another site's
header, footer, disclaimer and share prompts; related-headline teasers and photo
captions inserted between paragraphs; a new title (sometimes put in the text);
truncation to 50-90% with a "read more" link; paragraphs reflowed; light edits
(wire datelines, typographic quotes, a few words changed).  Some copies are exact
(same text elsewhere) or declare the original as canonical URL.

Each line of ``labelled.jsonl`` is an ``articles.extracted`` value plus ``label``
(the story key: copies of one story share it) and ``transforms`` (what was done).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).parent
SEED = 5

SITES = [
    # (domain, name, header lines, footer lines)
    ("dailywire-news.example", "Daily Wire News", ["Home » World » News"],
     ["Source link", "(This article is generated through the syndicated feed sources, Daily Wire News neither "
      "supports nor owns any part of this article)", "Leave a Reply", "Your email address will not be published. "
      "Required fields are marked *"]),
    ("financetin.example", "Financetin", ["Markets | Economy | Politics | Tech"],
     ["Source link", "Disclaimer: Financetin is an automatic aggregator of the all world's media. In each content, "
      "the hyperlink to the primary source is specified. All trademarks belong to their rightful owners."]),
    ("metro-herald.example", "Metro Herald", [],
     ["Sign up for our morning newsletter to get the day's top stories delivered to your inbox.",
      "Copyright 2024 Metro Herald. All rights reserved. This material may not be published, broadcast, rewritten "
      "or redistributed."]),
    ("newsnow24.example", "NewsNow24", ["Advertisement"],
     ["Share this:", "Click to share on Twitter (Opens in new window)", "Click to share on Facebook (Opens in new "
      "window)", "Like this:", "Related"]),
    ("coastal-times.example", "The Coastal Times", ["Subscribe now and save 50% on your first year"],
     ["We want to hear from you. Send your tips and story ideas to our newsroom.",
      "Comments are closed on this article."]),
    ("the-globe-feed.example", "Globe Feed", [],
     ["Thanks for reading! This story was republished from a wire service partner.", "Follow us on social media "
      "for the latest updates.", "Tags: news, world, latest"]),
    ("valley-post.example", "Valley Post", ["Breaking News Alert"],
     ["Have a news tip? Email us or call our newsroom any time.", "Valley Post is supported by readers like you. "
      "Please consider a donation to keep local journalism alive."]),
]
ORIGINS = ["wire.example", "globalnews.example", "capitalreport.example", "the-ledger.example"]
TITLE_PREFIXES = ["", "", "BREAKING: ", "WATCH: ", "UPDATE: ", "Analysis: "]
CAPTIONS = [
    "Photo: {a} pictured in a file image. (Reuters)",
    "{a} and {b} are seen in this handout photo released by officials.",
    "FILE PHOTO: A view of {a}, as seen earlier this year.",
    "Image credit: Getty Images. {a} during an event last month.",
    "{a}, shown here in an archive photo, has been at the centre of attention.",
]
SHARE = ["Share this article", "Click here to follow us on WhatsApp", "Advertisement", "ADVERTISEMENT",
         "Continue reading below", "Story continues below advertisement"]
EDITS = [(r"\bsaid\b", "says"), (r"\bpercent\b", "per cent"), (r"\bon Saturday\b", "Saturday"),
         (r"\btold reporters\b", "told journalists"), (r"\bhowever\b", "but"), (r"\bofficials\b", "authorities")]
DATELINES = ["(AP) — ", "(Reuters) - ", "NEW YORK (AFP) — ", "— ", ""]


def parse_stories(text: str) -> list[dict]:
    stories = []
    for block in re.split(r"^=== ", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        key, title, subject = (p.strip() for p in head.split("|"))
        paras = [re.sub(r"\s+", " ", p).strip() for p in body.strip().split("\n\n") if p.strip()]
        stories.append({"key": key, "title": title, "subject": subject, "paras": paras})
    return stories


def names(paras: list[str]) -> list[str]:
    found = re.findall(r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)+)\b", " ".join(paras))
    return sorted(set(found)) or ["The scene"]


def typographic(t: str) -> str:
    t = re.sub(r'"(\w)', "\u201c\\1", t)
    t = t.replace('"', "\u201d")
    return t.replace("'", "\u2019").replace(" - ", " \u2014 ")


def truncate(paras: list[str], share: float, rng: random.Random, site: str) -> list[str]:
    words = sum(len(p.split()) for p in paras)
    budget = int(words * share)
    out = []
    for p in paras:
        w = p.split()
        if budget <= 0:
            break
        if len(w) > budget:
            out.append(" ".join(w[:budget]) + " \u2026")
            break
        out.append(p)
        budget -= len(w)
    out.append(rng.choice([f"Read more at {site}", "[Continue reading]", "Read the full story on the original site.",
                           "Click here to read more"]))
    return out


def reflow(paras: list[str], rng: random.Random) -> list[str]:
    out: list[str] = []
    for p in paras:
        if out and rng.random() < 0.3:
            out[-1] = out[-1] + " " + p  # merge with the previous paragraph
            continue
        sentences = re.split(r"(?<=[.!?]) (?=[A-Z])", p)
        if len(sentences) > 2 and rng.random() < 0.3:
            cut = rng.randrange(1, len(sentences))
            out.extend([" ".join(sentences[:cut]), " ".join(sentences[cut:])])
        else:
            out.append(p)
    return out


def copy_of(story: dict, others: list[dict], rng: random.Random, site: tuple) -> tuple[str, str, list[str]]:
    domain, sname, header, footer = site
    paras = list(story["paras"])
    done = []
    if rng.random() < 0.5:
        paras[0] = rng.choice(DATELINES) + paras[0]
        done.append("dateline")
    if rng.random() < 0.5:
        edits = rng.sample(EDITS, 2)
        paras = [re.sub(a, b, p, count=1) for p in paras for a, b in [edits[0]]]
        paras = [re.sub(edits[1][0], edits[1][1], p, count=1) for p in paras]
        done.append("edits")
    if rng.random() < 0.5:
        paras = [typographic(p) for p in paras]
        done.append("typographic")
    if rng.random() < 0.5:
        paras = reflow(paras, rng)
        done.append("reflow")
    if rng.random() < 0.45:
        share = rng.uniform(0.5, 0.9)
        paras = truncate(paras, share, rng, domain)
        done.append(f"truncated {share:.2f}")
    who = names(story["paras"])
    inserts = []
    for _ in range(rng.randint(0, 3)):
        a, b = rng.choice(who), rng.choice(who)
        inserts.append(rng.choice(CAPTIONS).format(a=a, b=b))
    if inserts:
        done.append(f"{len(inserts)} captions")
    teasers = [f"{rng.choice(['READ MORE', 'RELATED', 'Also read', 'You may also like'])}: {o['title']}"
               for o in rng.sample(others, rng.randint(0, 3))]
    if teasers:
        done.append(f"{len(teasers)} teasers")
    shares = [rng.choice(SHARE) for _ in range(rng.randint(0, 2))]
    for item in inserts + teasers + shares:
        paras.insert(rng.randint(1, max(1, len(paras) - 1)), item)
    title = rng.choice(TITLE_PREFIXES) + story["title"] + rng.choice(["", f" | {sname}", f" - {sname}"])
    if title != story["title"]:
        done.append("retitled")
    if rng.random() < 0.3:
        paras.insert(0, title)
        done.append("title in text")
    text = "\n\n".join(header + paras + footer)
    done.append(f"wrapper {domain}")
    return title, text, done


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:60]


def make(rng: random.Random) -> list[dict]:
    stories = parse_stories((HERE / "stories.txt").read_text(encoding="utf-8"))
    articles = []
    for story in stories:
        others = [o for o in stories if o is not story]
        origin = rng.choice(ORIGINS)
        orig_url = f"https://{origin}/{slug(story['title'])}"
        base = {"label": story["key"], "subject": story["subject"]}
        articles.append({**base, "url": orig_url, "canonical_url": orig_url, "source": origin,
                         "title": story["title"], "text": "\n\n".join(story["paras"]), "transforms": ["original"]})
        for site in rng.sample(SITES, rng.randint(4, 6)):
            title, text, done = copy_of(story, others, rng, site)
            url = f"https://{site[0]}/{rng.randint(2023, 2024)}/{slug(title)}-{rng.randint(1000, 9999)}"
            canonical = url
            if rng.random() < 0.08:
                canonical = orig_url  # the copy declares the original as canonical
                done.append("canonical=original")
            articles.append({**base, "url": url, "canonical_url": canonical, "source": site[1], "title": title,
                             "text": text, "transforms": done})
        if rng.random() < 0.3:
            site = rng.choice(SITES)
            url = f"https://mirror.{site[0]}/{slug(story['title'])}"
            articles.append({**base, "url": url, "canonical_url": url, "source": site[1], "title": story["title"],
                             "text": "\n\n".join(story["paras"]), "transforms": ["exact copy"]})
    rng.shuffle(articles)
    t0 = datetime(2024, 3, 1, 6, 0, tzinfo=timezone.utc)
    out = []
    for i, a in enumerate(articles):
        aid = hashlib.sha256(a["url"].encode()).hexdigest()[:32]
        fetched = (t0 + timedelta(minutes=7 * i)).isoformat().replace("+00:00", "Z")
        domain = a["url"].split("/")[2]
        out.append({"schema_version": 1, "id": aid, "url": a["url"], "canonical_url": a["canonical_url"],
                    "feed_url": f"https://{domain}/feed", "entry_id": a["url"], "title": a["title"],
                    "source": a["source"], "published": fetched, "fetched_at": fetched, "text": a["text"],
                    "label": a["label"], "subject": a["subject"], "transforms": a["transforms"]})
    return out


def main() -> None:
    articles = make(random.Random(SEED))
    with open(HERE / "labelled.jsonl", "w", encoding="utf-8") as f:
        for a in articles:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")
    print(f"{len(articles)} articles, {len({a['label'] for a in articles})} stories -> {HERE / 'labelled.jsonl'}")


if __name__ == "__main__":
    main()
