"""Story identity on labelled streams: repeats across feeds, merged stories, edits delivered.

    .venv/bin/python bench/identity_bench.py [--root TREE] [--seed 1]

Runs the extract canonical choice and the dedupe stage (``process_batch`` in batches
of 50, SQLite store on) over three generated streams and counts what an upserting
consumer of ``articles.unique`` would notice:

- ``feeds``: 400 stories, each listed by 1-5 feeds of its site (category feeds, an
  RSS next to a JSON Feed), in shuffled order, 10 % of messages redelivered as they
  are. *repeats*: emissions on articles.unique beyond one per story; *lost*: stories
  never on articles.unique.
- ``section``: 20 sites x 15 stories whose template declares the section page as
  canonical, half of the sites also behind one login-wall canonical. *merged*:
  stories that do not end up under a key of their own on articles.unique.
- ``edits``: 300 stories, then per story a correction (new text, later poll), a slug
  change (new link and id, same feed + GUID, new text), or a re-stamp (later poll,
  same text), 100 each. *delivered*: edits on articles.unique as ``update`` under the
  story's first key; *self-duplicates*: edits on articles.duplicates as copies of
  their own story; *re-stamps emitted*: outputs for re-stamps.

``--root`` runs another checkout (e.g. a ``git archive`` of an earlier commit) for a
before/after in the same session.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    from pipeline.config import loads
    from pipeline.stages.base import Context
    from pipeline.stages.dedupe import STAGE
    from pipeline.stages.extract import choose_canonical
    from pipeline.urls import article_id, canonicalize

    r = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="identity-bench-"))

    def stage(name: str):
        return STAGE(Context(settings=loads(f"state_dir: {tmp / name}\n", env={})))

    syll = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "dor", "an", "is", "pe", "qua", "ri", "no", "zem", "ul"]
    vocab = ["".join(r.choice(syll) for _ in range(r.randint(1, 3))) for _ in range(4000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like: common words shared, sentences not

    def body() -> str:
        # (stories from chrome_set's templates share long phrases by design; identity is
        # measured here, so the texts of different stories are kept apart)
        paras = []
        for _ in range(r.choice([4, 6, 9])):
            words = r.choices(vocab, weights, k=r.randint(35, 55))
            paras.append(" ".join(words).capitalize() + ".")
        return "\n\n".join(paras)

    def value(url: str, declared: str | None, feed: str, guid: str, text: str, n: int, poll: int = 0) -> dict:
        canonical = choose_canonical(url, declared)
        return {"schema_version": 1, "id": article_id(canonical), "url": url, "canonical_url": canonical,
                "feed_url": feed, "entry_id": guid, "text": text,
                "fetched_at": f"2024-03-0{1 + n // 40000}T{(n // 1600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}Z",
                "polled_at": f"2024-03-01T00:00:{poll:02d}Z", "is_update": poll > 0}

    def run(st, values: list[dict]) -> list:
        out = []
        for i in range(0, len(values), 50):
            for res in st.process_batch(values[i:i + 50]):
                out.append(res if isinstance(res, BaseException) else list(res))
        return out

    print(f"identity bench (tree {args.root}, seed {args.seed})")
    # --- one article, several feeds --------------------------------------------------------
    msgs, story_of = [], []
    for s in range(400):
        site = f"https://site{s % 25}.example"
        url = f"{site}/news/2024/03/story-{s}-{r.randrange(10**6)}"
        text = body()
        for f in r.sample(["world", "top", "uk", "politics", "all.json"], r.randint(1, 5)):
            msgs.append(value(url, url, f"{site}/{f}", url, text, len(msgs)))
            story_of.append(s)
    order = list(range(len(msgs)))
    r.shuffle(order)
    stream, labels = [], []
    for i in order:
        stream.append(msgs[i])
        labels.append(story_of[i])
        if r.random() < 0.1:
            stream.append(dict(msgs[i]))
            labels.append(story_of[i])
    for n, v in enumerate(stream):
        v["fetched_at"] = value("x", None, "f", "g", "", n)["fetched_at"]
    outs = run(stage("feeds"), stream)
    # a redelivered message gets its earlier output again (at-least-once; same key, same value):
    # what counts is an emission on articles.unique from another listing of a story
    per_story: Counter = Counter()
    seen_msgs: set = set()
    for lab, v, o in zip(labels, stream, outs):
        msg = (v["feed_url"], v["entry_id"], v["polled_at"])
        if msg in seen_msgs:
            continue
        seen_msgs.add(msg)
        per_story[lab] += sum(1 for x in o if x.topic == "articles.unique")
    emitted = {lab for lab, n in per_story.items() if n}
    print(f"  one article in 1-5 feeds: {len(stream)} messages ({len(stream) - len(seen_msgs)} redeliveries), "
          f"400 stories: repeats on articles.unique {sum(per_story.values()) - len(emitted)}, "
          f"lost {400 - len(emitted)}")

    # --- section-page and login-wall canonicals --------------------------------------------
    stream, labels = [], []
    for site_n in range(20):
        site = f"https://paper{site_n}.example"
        for k in range(15):
            url = f"{site}/news/2024/03/{k}-{r.choice(['council', 'rail', 'harbour'])}-story-{r.randrange(10**6)}"
            declared = f"{site}/news/" if site_n % 2 or k % 3 else f"{site}/account/login?next=/news"
            stream.append(value(url, declared, f"{site}/feed", url, body(), len(stream)))
            labels.append((site_n, k))
    outs = run(stage("section"), stream)
    keys = defaultdict(set)
    for lab, o in zip(labels, outs):
        for x in o:
            if x.topic == "articles.unique":
                keys[x.key].add(lab)
    own = sum(1 for ks in keys.values() if len(ks) == 1)
    print(f"  section/login canonicals: 300 stories of 20 sites: merged stories {300 - own} "
          f"(distinct keys on articles.unique: {len(keys)})")
    # the dedupe stage alone, as if extract had taken the section page as canonical
    for v in stream:
        v["canonical_url"] = canonicalize(v["url"].rsplit("/news/", 1)[0] + "/news/")
        v["id"] = article_id(v["canonical_url"])
    outs = run(stage("section-dedupe"), stream)
    keys = defaultdict(set)
    for lab, o in zip(labels, outs):
        for x in o:
            if x.topic == "articles.unique":
                keys[x.key].add(lab)
    own = sum(1 for ks in keys.values() if len(ks) == 1)
    print(f"    dedupe alone, every story declaring its section page: merged stories {300 - own}")

    # --- corrections, slug changes, re-stamps -----------------------------------------------
    st = stage("edits")
    firsts, first_key = [], {}
    for s in range(300):
        site = f"https://daily{s % 10}.example"
        url = f"{site}/news/2024/03/story-{s}-{r.randrange(10**6)}"
        firsts.append(value(url, url, f"{site}/feed", f"tag:daily,2024:{s}", body(), s))
    for v, o in zip(firsts, run(st, firsts)):
        first_key[v["entry_id"]] = o[0].key
    kinds = ["correction"] * 100 + ["slug"] * 100 + ["restamp"] * 100
    r.shuffle(kinds)
    edits = []
    for n, (v, kind) in enumerate(zip(firsts, kinds)):
        e = dict(v, polled_at="2024-03-01T00:00:30Z", is_update=True,
                 fetched_at=value("x", None, "f", "g", "", 1000 + n)["fetched_at"])
        if kind != "restamp":
            paras = e["text"].split("\n\n")
            paras[1] = paras[1] + " Correction: an earlier version of this story misstated the figure."
            e["text"] = "\n\n".join(paras)
        if kind == "slug":
            e["url"] = e["canonical_url"] = v["url"] + "-renamed"
            e["id"] = article_id(e["canonical_url"])
        edits.append((kind, e))
    outs = run(st, [e for _, e in edits])
    delivered = Counter()
    selfdup = restamped = 0
    for (kind, e), o in zip(edits, outs):
        for x in o:
            d = x.value["dedupe"]
            if kind == "restamp":
                restamped += 1
            elif x.topic == "articles.unique" and d["status"] == "update" and x.key == first_key[e["entry_id"]]:
                delivered[kind] += 1
            elif x.topic == "articles.duplicates" and d.get("duplicate_of") == first_key[e["entry_id"]]:
                selfdup += 1
    print(f"  edits: corrections delivered {delivered['correction']}/100, slug changes delivered "
          f"{delivered['slug']}/100 (self-duplicates {selfdup}), re-stamps emitted {restamped}/100")
    print(json.dumps({"tmp": str(tmp)}))


if __name__ == "__main__":
    main()
