"""The dedupe stage: exact and near-duplicate signals, updates, replay, restart, eviction."""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline import topics
from pipeline.config import loads
from pipeline.config.dedupe import DedupeSettings
from pipeline.dedupe.engine import Deduper
from pipeline.errors import ConfigError, StageError
from pipeline.stages.base import Context
from pipeline.stages.dedupe import STAGE, DedupeStage

DATA = Path(__file__).resolve().parents[2] / "data" / "dedupe"
SEED = Path("/work/shared/seed/syndicated-article.txt")
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)


def _stories() -> dict[str, str]:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("make_set", DATA / "make_set.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {s["key"]: "\n\n".join(s["paras"]) for s in mod.parse_stories((DATA / "stories.txt").read_text())}


STORIES = _stories()


def stage(tmp_path: Path, **dedupe) -> DedupeStage:
    yaml = f"state_dir: {tmp_path}\ndedupe: {json.dumps(dedupe)}\n"
    return STAGE(Context(settings=loads(yaml, env={}), now=lambda: NOW))


def article(n: str, text: str, *, minutes: int = 0, **extra) -> dict:
    t = (datetime(2024, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)).isoformat()
    v = {"schema_version": 1, "id": f"id-{n}", "url": f"https://site-{n}.example/story",
         "canonical_url": f"https://site-{n}.example/story", "feed_url": f"https://site-{n}.example/feed",
         "text": text, "fetched_at": t, "published": t}
    v.update(extra)
    return v


def one(st: DedupeStage, value: dict):
    [out] = st.process(value)
    return out.topic, out.value["dedupe"]


def wrap(text: str, site: str = "Daily Wire") -> str:
    paras = text.split("\n\n")
    paras.insert(1, "Photo: officials at the scene on Sunday. (Reuters)")
    paras.insert(3, "READ MORE: How three countries plan to build up their alliance")
    paras.insert(5, "Share this article")
    return "\n\n".join([f"BREAKING: a new headline from {site}"] + paras +
                       ["Source link", f"({site} neither supports nor owns any part of this article)",
                        "Leave a Reply. Your email address will not be published."])


def half(text: str, share: float = 0.5) -> str:
    words = text.split(" ")
    return " ".join(words[: int(len(words) * share)]) + " … Read more"


def test_stage_identity():
    assert DedupeStage.name == "dedupe"
    assert DedupeStage.input_topic == topics.ARTICLES_EXTRACTED
    assert DedupeStage.output_topics == (topics.ARTICLES_UNIQUE, topics.ARTICLES_DUPLICATES)


def test_first_copy_unique_then_near_duplicate(tmp_path):
    st = stage(tmp_path)
    topic, d = one(st, article("a", STORIES["kim-train"]))
    assert topic == topics.ARTICLES_UNIQUE
    assert d == {"status": "unique", "cluster_id": "c-id-a", "duplicate_of": None, "similarity": None, "signal": None}
    topic, d = one(st, article("b", wrap(STORIES["kim-train"]), minutes=5, title="A new title"))
    assert topic == topics.ARTICLES_DUPLICATES
    assert d["status"] == "duplicate" and d["cluster_id"] == "c-id-a" and d["duplicate_of"] == "id-a"
    assert d["signal"] == "near_duplicate" and 0.5 < d["similarity"] <= 1.0


def test_seed_syndicated_copy_matches_its_truncated_wire_original(tmp_path):
    seed = SEED.read_text(encoding="utf-8")
    body = seed.split("\n\n\nSource link")[0]
    st = stage(tmp_path)
    one(st, article("wire", half(body, 0.6)))
    topic, d = one(st, article("syndicated", seed, minutes=1))
    assert (topic, d["duplicate_of"], d["signal"]) == (topics.ARTICLES_DUPLICATES, "id-wire", "near_duplicate")


@pytest.mark.parametrize("first_truncated", [False, True])
def test_half_copy_is_a_duplicate_either_order(tmp_path, first_truncated):
    full, part = STORIES["fed-hold"], wrap(half(STORIES["fed-hold"], 0.5), "Metro")
    first, second = (part, full) if first_truncated else (full, part)
    st = stage(tmp_path)
    assert one(st, article("a", first))[1]["status"] == "unique"
    topic, d = one(st, article("b", second, minutes=1))
    assert topic == topics.ARTICLES_DUPLICATES and d["cluster_id"] == "c-id-a"


@pytest.mark.parametrize("a,b", [("kim-train", "kim-missile"), ("fed-hold", "fed-banks"),
                                 ("quake-toll", "quake-aid"), ("council-stadium", "council-housing"),
                                 ("vance-layoffs", "vance-launch"), ("wildfire-ca", "wildfire-or"),
                                 ("match-city", "match-united")])
def test_different_stories_on_the_same_subject_stay_apart(tmp_path, a, b):
    st = stage(tmp_path)
    one(st, article("a", wrap(STORIES[a], "Financetin")))
    topic, d = one(st, article("b", wrap(STORIES[b], "Financetin"), minutes=1))
    assert (topic, d["status"]) == (topics.ARTICLES_UNIQUE, "unique")


def test_exact_signals(tmp_path):
    st = stage(tmp_path)
    one(st, article("a", STORIES["rail-strike"], entry_id="tag:wire.example,2024:rail-1"))
    # same canonical URL (the copy declares the original), whatever the text
    _, d = one(st, article("b", "A short teaser.", canonical_url="https://site-a.example/story?utm_source=x"))
    assert (d["signal"], d["duplicate_of"], d["similarity"]) == ("canonical_url", "id-a", 1.0)
    # same global GUID
    _, d = one(st, article("c", "Another teaser text.", entry_id="tag:wire.example,2024:rail-1"))
    assert (d["signal"], d["duplicate_of"]) == ("guid", "id-a")
    # same normalised text: case, punctuation, typographic quotes and spacing do not matter
    copy = STORIES["rail-strike"].upper().replace("'", "\u2019").replace("\n\n", "\n")
    _, d = one(st, article("d", copy))
    assert (d["signal"], d["duplicate_of"]) == ("text_hash", "id-a")


def test_short_opaque_guids_are_scoped_by_feed(tmp_path):
    st = stage(tmp_path)
    one(st, article("a", STORIES["mars-rover"], entry_id="123"))
    _, d = one(st, article("b", STORIES["museum-heist"], entry_id="123"))
    assert d["status"] == "unique"


def test_update_flows_as_update_of_its_story(tmp_path):
    st = stage(tmp_path)
    one(st, article("a", STORIES["quake-toll"]))
    one(st, article("b", wrap(STORIES["quake-toll"]), minutes=1))
    newer = STORIES["quake-toll"].replace("at least 40", "at least 51")
    topic, d = one(st, article("a", newer, minutes=60, is_update=True))
    assert topic == topics.ARTICLES_UNIQUE
    assert d == {"status": "update", "cluster_id": "c-id-a", "duplicate_of": None, "similarity": None, "signal": "id"}
    # an update of a copy stays with the copies
    topic, d = one(st, article("b", wrap(newer), minutes=61, is_update=True))
    assert (topic, d["status"], d["cluster_id"], d["duplicate_of"]) == (
        topics.ARTICLES_DUPLICATES, "update", "c-id-a", "id-a")
    # a new copy of the updated text joins the same cluster
    _, d = one(st, article("c", half(newer, 0.7), minutes=62))
    assert d["cluster_id"] == "c-id-a"


def test_replay_gives_the_same_output(tmp_path):
    values = [article("a", STORIES["drug-approval"]), article("b", wrap(STORIES["drug-approval"]), minutes=1),
              article("a", STORIES["drug-approval"] + " Corrected.", minutes=2, is_update=True),
              article("c", STORIES["mars-rover"], minutes=3)]
    st = stage(tmp_path)
    first = [o for v in values for o in st.process(v)]
    again = [o for v in values for o in st.process(v)]  # redelivered, same process
    assert again == first
    st.commit()
    st.close()
    st = stage(tmp_path)  # redelivered after a restart
    assert [o for v in values for o in st.process(v)] == first


def test_crash_before_commit_then_replay(tmp_path):
    values = [article(str(i), STORIES[k], minutes=i) for i, k in enumerate(["kim-train", "fed-hold", "kim-missile"])]
    values.append(article("x", wrap(half(STORIES["kim-train"], 0.6)), minutes=9))
    st = stage(tmp_path)
    first = [o for v in values for o in st.process(v)]  # no commit: the process dies here
    st2 = stage(tmp_path)
    assert [o for v in values for o in st2.process(v)] == first
    # process_batch persists before returning: a crash after it also replays identically
    st3 = stage(tmp_path / "b")
    batch = st3.process_batch(values)
    st4 = stage(tmp_path / "b")
    assert [o for v in values for o in st4.process(v)] == [o for r in batch for o in r]


def test_index_survives_restart(tmp_path):
    st = stage(tmp_path)
    one(st, article("a", STORIES["museum-heist"]))
    st.commit()
    st.close()
    st = stage(tmp_path)
    assert len(st.deduper) == 1
    topic, d = one(st, article("b", wrap(half(STORIES["museum-heist"], 0.6)), minutes=5))
    assert (topic, d["duplicate_of"]) == (topics.ARTICLES_DUPLICATES, "id-a")


def test_eviction_by_window(tmp_path):
    st = stage(tmp_path, window_days=1)
    one(st, article("a", STORIES["wildfire-ca"]))
    one(st, article("b", STORIES["match-city"], minutes=60 * 30))  # moves the watermark 30 h on
    st.commit()
    assert len(st.deduper) == 1
    _, d = one(st, article("c", STORIES["wildfire-ca"], minutes=60 * 31))
    assert d["status"] == "unique"  # the old copy left the window
    st.close()
    st = stage(tmp_path, window_days=1)
    assert len(st.deduper) == 2


def test_compaction_keeps_decisions(tmp_path):
    cfg = DedupeSettings(window_days=1, flush_every=10)
    d = Deduper(cfg, tmp_path / "x.sqlite3")
    keys = sorted(STORIES)
    for day in range(3):
        for i in range(400):
            text = f"Filler number {day} {i} " + " ".join(f"w{(i * 7 + j) % 997}x{day}" for j in range(40))
            d.decide(article(f"{day}-{i}", text, minutes=day * 1500 + i))
    d.flush()
    for i, k in enumerate(keys):
        d.decide(article(k, STORIES[k], minutes=4500 + i))
    res = d.decide(article("copy", wrap(STORIES["rail-strike"]), minutes=4600))
    assert (res.status, res.duplicate_of) == ("duplicate", "id-rail-strike")


def test_value_without_id_is_a_stage_error(tmp_path):
    st = stage(tmp_path)
    with pytest.raises(StageError):
        st.process({"text": "x"})


def test_config_validation():
    with pytest.raises(ConfigError) as e:
        loads("dedupe:\n  min_samples: 300\n  max_samples: 100\n", env={})
    assert "dedupe" in str(e.value)
    with pytest.raises(ConfigError):
        loads("dedupe:\n  containment_threshold: 1.5\n", env={})
    with pytest.raises(ConfigError):
        loads("dedupe:\n  shingles: 5\n", env={})


def test_labelled_set_precision_and_recall():
    arts = [json.loads(line) for line in (DATA / "labelled.jsonl").read_text(encoding="utf-8").splitlines()]
    d = Deduper(DedupeSettings())
    clusters = [d.decide(a).cluster_id for a in arts]
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(arts)), 2):
        same, pred = arts[i]["label"] == arts[j]["label"], clusters[i] == clusters[j]
        tp, fp, fn = tp + (same and pred), fp + (pred and not same), fn + (same and not pred)
    assert len({a["label"] for a in arts}) >= 15
    assert tp / (tp + fp) >= 0.99
    assert tp / (tp + fn) >= 0.95


def test_batch_decides_as_one_by_one(tmp_path):
    # process_batch decides a whole batch at once (vectorised signatures and lookups);
    # copies inside the batch, bad values and updates come out as one by one.
    values = [article("a", STORIES["kim-train"]), article("b", wrap(STORIES["kim-train"]), minutes=1),
              {"text": "no id"}, article("c", half(STORIES["fed-hold"], 0.6), minutes=2),
              article("d", STORIES["fed-hold"], minutes=3), article("e", "Too short.", minutes=4),
              article("a", STORIES["kim-train"] + " Updated.", minutes=5, is_update=True),
              article("f", STORIES["kim-train"].upper(), minutes=6), article("g", "", minutes=7)]
    one_by_one = stage(tmp_path / "1")
    expected = []
    for v in values:
        try:
            expected.append(one_by_one.process(v))
        except StageError as exc:
            expected.append(type(exc))
    got = stage(tmp_path / "2").process_batch(values)
    assert [type(r) if isinstance(r, BaseException) else r for r in got] == expected
    assert got[1][0].value["dedupe"]["duplicate_of"] == "id-a"
    assert got[4][0].value["dedupe"]["duplicate_of"] == "id-c"


# --- fast paths: the same keys as the full parsers ------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

from pipeline import urls  # noqa: E402
from pipeline.dedupe.signatures import canonical_url, guid_signal  # noqa: E402

_URLISH = hst.builds(
    lambda scheme, host, sep, path: scheme + host + sep + path,
    hst.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "", " https://"]),
    hst.text(alphabet="abzAZ09-.é[]:@_", max_size=12),
    hst.sampled_from(["/", "", ".", ":443/", ":8080/", "//", "/?", "#"]),
    hst.text(alphabet="aZ09-._~!$&'()*+,;=:@/%?#é \t", max_size=20))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_URLISH)
def test_canonical_url_fast_path_is_canonicalize(url):
    # dedupe keys on canonical_url without re-parsing it when it is canonical already
    # (as extract writes it): the key must be the one urls.canonicalize gives
    assert canonical_url(url) == urls.canonicalize(url)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_URLISH, hst.sampled_from([None, "", "https://www.feed.example/rss"]))
def test_guid_signal_fast_path_is_urlsplit(guid, feed_url):
    g = guid.strip()
    try:
        slow = urls.domain(g) + urls.guid_key(g) if g and urls.re.match(r"^[a-z][a-z0-9+.-]*://", g, urls.re.I) \
            else None
    except ValueError:
        return  # urlsplit refuses it; the fast path does not change that case
    if slow is not None:
        assert guid_signal(guid, feed_url) == slow


# --- short stories on shared subjects ---------------------------------------------------
# Generated like the chaos scenario's feeds: ~75-140 words of template sentences over a
# small vocabulary, so two different stories share a phrase now and then ("residents of
# Leeds asked the Regional Water Board about the", 6 five-word shingles) but never a
# sentence.  On such texts a sample of 24 hashes let one shared phrase look like 45 %
# containment (issue: "two different stories on the same subject stay apart").
_ORGS = ["the Harbor Authority", "the Ministry of Transport", "the City Council", "the Port Workers Union",
         "the National Weather Service", "the University of Halden", "the Regional Water Board",
         "the Chamber of Commerce", "Northwind Energy", "Bluefield Bank", "Atlas Logistics", "Kestrel Robotics"]
_PLACES = ["Halifax", "Bergen", "Lyon", "Porto", "Tampere", "Gdansk", "Valencia", "Dundee", "Trieste", "Cork",
           "Bilbao", "Utrecht", "Graz", "Tallinn", "Ghent", "Leeds"]
_PEOPLE = [f"{f} {l}" for f in ("Amelia", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro")
           for l in ("Abbott", "Barros", "Dubois", "Eriksen", "Moreau", "Okafor", "Petrov", "Varga")]
_NOUNS = ["ferry service", "budget", "housing plan", "bridge", "school", "hospital wing", "bus route",
          "wind farm", "water main", "library", "rail link", "tram line", "flood barrier", "clinic"]
_VERBS = ["approved", "delayed", "rejected", "expanded", "reviewed", "funded", "paused", "announced"]
_ADJ = ["cautious", "sharp", "lengthy", "unexpected", "heated", "brief", "public", "closed", "final"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _short_story(r: random.Random) -> str:
    c = r.choice
    templates = [
        lambda: f"{c(_PEOPLE)} {c(_VERBS)} the {c(_ADJ)} {c(_NOUNS)} in {c(_PLACES)} on {c(_DAYS)}.",
        lambda: f"{c(_ORGS)} {c(_VERBS)} {r.randint(2, 990)} {c(_ADJ)} plans near {c(_PLACES)}.",
        lambda: f"According to {c(_PEOPLE)}, {c(_ORGS)} {c(_VERBS)} the {c(_NOUNS)} after "
                f"{r.randint(2, 60)} weeks.",
        lambda: f"{r.randint(12, 9000)} residents of {c(_PLACES)} asked {c(_ORGS)} about the {c(_ADJ)} "
                f"{c(_NOUNS)} on {c(_DAYS)}.",
        lambda: f"{c(_PEOPLE)} of {c(_ORGS)} met {c(_PEOPLE)} in {c(_PLACES)} before the {c(_ADJ)} vote.",
    ]
    target = r.randint(75, 140)
    sentences: list[str] = []
    while sum(len(s.split()) for s in sentences) < target:
        sentences.append(c(templates)())
    return "\n\n".join(" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3))


def test_short_stories_sharing_phrases_stay_apart_and_a_truncated_copy_is_found() -> None:

    r = random.Random(3)  # with 24 samples this seed gave a false pair
    d = Deduper(DedupeSettings())
    texts = [_short_story(r) for _ in range(500)]
    decisions = [d.decide(article(str(n), t, minutes=n)) for n, t in enumerate(texts)]
    false = [(n, x.duplicate_of, x.similarity) for n, x in enumerate(decisions) if x.status != "unique"]
    assert false == []
    # a copy keeping the first 60 % of a short story's words, on another site
    words = texts[123].split(" ")
    copy = " ".join(words[: int(len(words) * 0.6)])
    x = d.decide(article("copy", "Another Site\n\n" + copy, minutes=600))
    assert (x.status, x.duplicate_of, x.signal) == ("duplicate", "id-123", "near_duplicate")


# --- the vectorised machinery decides as one value at a time ------------------------------
import numpy as np  # noqa: E402

from pipeline.dedupe.index import KeyIndex, StrColumn  # noqa: E402
from pipeline.dedupe.signatures import exact_keys, key64, sign, sign_batch  # noqa: E402


def _texts(seed: int, n: int) -> list[str]:
    r = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)] + ["the", "of", "and", "Ünïcode", "“quoted”", "naïve—dash"]
    out = [" ".join(r.choice(vocab) for _ in range(r.randint(1, 700))) for _ in range(n)]
    return out + ["", "   ", "one", "two words", "a b c d", "a b c d e", "x " * 40]


@pytest.mark.parametrize("params", [{}, {"min_samples": 8, "max_samples": 20}, {"min_samples": 1, "max_samples": 8},
                                    {"k": 3, "rate": 0.5, "min_samples": 100, "max_samples": 100},
                                    {"k": 8, "rate": 0.01}])
def test_sign_batch_is_sign_text_by_text(params):
    # samples are persisted and compared with samples of later runs: the batch path
    # must give exactly what sign gives, for long (cut), short (widened) and tiny texts
    texts = _texts(1, 120)
    long_only = [t for t in texts if len(t.split()) > 400]
    for batch in (texts, long_only, texts[-7:]):
        b = sign_batch(batch, **params)
        assert len(b) == len(batch) and b.off[-1] == len(b.samples)
        for t, text in enumerate(batch):
            want, got = sign(text, **params), b.signature(t)
            assert (got.tau, got.words, got.text_hash) == (want.tau, want.words, want.text_hash)
            assert np.array_equal(got.sample, want.sample) and got.sample.dtype == np.uint32


def test_exact_keys_are_key64():
    for aid, url, guid, th in [("a", None, None, None), ("id-é", "https://x.example/a", "tag:x,1", -5),
                               ("", "", "", 0), ("0" * 32, "u", None, 2**63 - 1)]:
        assert exact_keys(aid, url, guid, th) == (
            key64("id", aid), None if url is None else key64("url", url),
            None if guid is None else key64("guid", guid), None if th is None else key64("text", str(th)))


@pytest.mark.parametrize("dtype", [np.uint32, np.int64])
def test_key_index_is_a_multimap_in_slot_order(dtype):
    r = random.Random(4)
    ix = KeyIndex(dtype, merge_at=600)
    ix.SMALL = 100  # exercise all three levels and both merges
    model: dict[int, list[int]] = {}
    alive = np.ones(20_000, dtype=bool)
    slot = 0
    for step in range(150):
        keys = [r.randint(0, 400) for _ in range(r.randint(0, 60))]
        slots = sorted(slot + i // 3 for i in range(len(keys)))
        slot = slots[-1] + 1 if slots else slot
        for k, s in zip(keys, slots):
            model.setdefault(k, []).append(s)
        ix.add_many(np.array(keys, dtype=dtype), np.array(slots, dtype=np.uint32))
        if ix.due:
            ix.merge()
        if step % 40 == 39:  # some slots die; their postings go at the merge
            alive[r.sample(range(slot), slot // 8)] = False
            ix.merge(alive)
            model = {k: [s for s in v if alive[s]] for k, v in model.items()}
        query = np.array([r.randint(0, 420) for _ in range(50)], dtype=dtype)
        which, got = ix.get_many(query)
        want = [(i, s) for i, k in enumerate(query.tolist()) for s in model.get(k, [])]
        assert list(zip(which.tolist(), got.tolist())) == want
    assert ix.get(int(query[0])) == model.get(int(query[0]), [])


def test_str_column_packs_article_ids_and_keeps_other_strings():
    values = [None, "0123456789abcdef0123456789abcdef", "c-0123456789abcdef0123456789abcdef", "id-a",
              "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcde ", "c-xyz", "", "c-"]
    col = StrColumn()
    col.extend(values)
    col.extend(values[1:3])
    assert [col.get(i) for i in range(len(col))] == values + values[1:3]
    assert col.other and len(col.other) == 6  # only the strings that are not (c-)article ids
    col.compact(np.array([1, 3, 9, 10]))
    assert [col.get(i) for i in range(len(col))] == [values[1], values[3], values[1], values[2]]


def _stream(seed: int, n: int) -> list[dict]:
    """Values where articles of one batch meet: copies, exact texts, redeliveries, updates, shared URLs."""
    r = random.Random(seed)
    keys = sorted(STORIES)
    out: list[dict] = []
    for i in range(n):
        roll = r.random()
        aid = f"{i:032x}" if r.random() < 0.7 else str(i)
        if out and roll < 0.1:
            v = dict(r.choice(out[-20:]))  # redelivered, updated, listed by another feed, or another story
            if r.random() < 0.3:
                v["polled_at"] = f"2024-03-02T00:00:{i % 60:02d}Z"  # the entry polled again
            other = r.random()
            if other < 0.2:
                v["feed_url"] = f"https://feeds.example/{r.randrange(3)}"
            elif other < 0.3:
                v["feed_url"] = f"https://feeds.example/{r.randrange(3)}"
                v["url"] = f"https://feeds.example/story/{i}"
                v["text"] = _texts(i, 1)[0]
                out.append(v)
                continue
            if r.random() < 0.5:
                v["text"] = str(v.get("text")) + " Corrected."
                v["is_update"] = True
            out.append(v)
            continue
        if out and roll < 0.45:
            src = r.choice(out[-30:])
            text = wrap(half(str(src["text"]), r.uniform(0.4, 1.0)), r.choice(["Metro", "Daily"]))
        elif out and roll < 0.5:
            text = str(r.choice(out[-30:])["text"]).upper()
        elif roll < 0.6:
            text = _short_story(r)
        else:
            text = STORIES[r.choice(keys)] if r.random() < 0.3 else _texts(i, 1)[0]
        v = article(aid, text, minutes=i // 3 + r.choice([0, 0, 0, -30, 2000]))
        v["id"] = aid
        if r.random() < 0.5:
            v["polled_at"] = "2024-03-01T00:00:00Z"
        if out and r.random() < 0.05:
            v["canonical_url"] = r.choice(out[-30:])["canonical_url"]
        out.append(v)
    return out


def test_batches_decide_as_one_by_one_on_a_mixed_stream(tmp_path):
    values = _stream(7, 400)
    one_by_one = stage(tmp_path / "1", window_days=1)
    expected = [one_by_one.process(v) for v in values]
    batched = stage(tmp_path / "2", window_days=1)
    got: list = []
    r = random.Random(1)
    i = 0
    while i < len(values):
        size = r.choice([1, 7, 50, 64, 130])
        got.extend(batched.process_batch(values[i:i + size]))
        i += size
    assert got == expected
    # (86 of 400 with min_cover; some copies published long before their first-seen original are its root)
    assert sum(o[0].value["dedupe"]["status"] == "duplicate" for o in got) > 40
    assert any(o[0].value["dedupe"]["signal"] == "original" for o in got)
    # a restarted worker decides as one that never stopped (replays and new values alike)
    batched.commit()
    restarted = stage(tmp_path / "2", window_days=1)
    more = values[-60:] + _stream(8, 60)
    assert [restarted.process(v) for v in more] == [one_by_one.process(v) for v in more]


_FOOTER = ("Leave a Reply. Your email address will not be published. Required fields are marked. Comment. Name. "
           "Email. Website. Save my name, email, and website in this browser for the next time I comment. Related "
           "posts. Most read this week. Subscribe to our newsletter for the latest local news, sport and weather.")


def test_a_sites_wrapper_does_not_make_its_short_stories_duplicates():
    # Short stories (75-140 words) behind the same ~50-word site footer: the footer is a
    # third of each text.  Its hashes are anchored by more and more of the site's stories,
    # and from common_postings of them on they count for nothing when two texts are compared.
    def false_pairs(cfg: DedupeSettings) -> tuple[int, tuple]:
        r = random.Random(1)
        d = Deduper(cfg)
        texts = [_short_story(r) for _ in range(300)]
        false = sum(d.decide(article(str(n), f"Metro Daily | News\n\n{t}\n\n{_FOOTER}", minutes=n)).status != "unique"
                    for n, t in enumerate(texts))
        words = texts[200].split(" ")
        copy = d.decide(article("copy", "Another Site\n\n" + " ".join(words[: int(len(words) * 0.6)]), minutes=400))
        return false, (copy.status, copy.duplicate_of)

    without, copy = false_pairs(DedupeSettings(common_postings=10**9))
    assert without > 100 and copy == ("duplicate", "id-200")
    with_guard, copy = false_pairs(DedupeSettings())
    assert with_guard <= 10 and copy == ("duplicate", "id-200")


# --- identity: one story, several deliveries (issue 14) ---------------------------------------------

def listing(n: str, text: str, feed: str, *, minutes: int = 0, url: str | None = None, **extra) -> dict:
    """Article ``n`` as delivered by ``feed`` (entry id: its URL, as most feeds do)."""
    v = article(n, text, minutes=minutes, **extra)
    v["feed_url"] = f"https://site-{n}.example/{feed}.xml"
    if url is not None:
        v["url"] = url
    v["entry_id"] = v["url"]
    return v


def test_one_article_listed_by_several_feeds_is_unique_once(tmp_path):
    st = stage(tmp_path)
    text = STORIES["quake-toll"]
    world, top, uk = (listing("a", text, f, minutes=i) for i, f in enumerate(["world", "top", "uk"]))
    topic, d = one(st, world)
    assert (topic, d["status"]) == (topics.ARTICLES_UNIQUE, "unique")
    topic, d = one(st, top)
    assert topic == topics.ARTICLES_DUPLICATES
    assert d == {"status": "duplicate", "cluster_id": "c-id-a", "duplicate_of": "id-a", "similarity": 1.0,
                 "signal": "same_article", "feeds": [world["feed_url"], top["feed_url"]]}
    topic, d = one(st, uk)
    assert (topic, d["signal"], d["feeds"]) == (topics.ARTICLES_DUPLICATES, "same_article",
                                                [world["feed_url"], top["feed_url"], uk["feed_url"]])
    first = [st.process(v) for v in (world, top, uk)]
    st.commit()
    st.close()
    # a true redelivery (same entry, same text) gets exactly its earlier output, also after a restart
    st = stage(tmp_path)
    assert [st.process(v) for v in (world, top, uk)] == first
    assert first[0][0].topic == topics.ARTICLES_UNIQUE


def test_an_edit_seen_through_another_feed_is_an_update(tmp_path):
    st = stage(tmp_path)
    one(st, listing("a", STORIES["quake-toll"], "world"))
    newer = STORIES["quake-toll"].replace("at least 40", "at least 51")
    topic, d = one(st, listing("a", newer, "top", minutes=30))
    assert (topic, d["status"], d["cluster_id"]) == (topics.ARTICLES_UNIQUE, "update", "c-id-a")
    # ...and the first feed listing the corrected text again is not a repeat
    topic, d = one(st, listing("a", newer, "world", minutes=31))
    assert (topic, d["signal"]) == (topics.ARTICLES_DUPLICATES, "same_article")


def test_two_stories_behind_one_declared_canonical_stay_two(tmp_path):
    """A template whose rel=canonical names the section page gives every story the same id."""
    from pipeline.urls import article_id

    st = stage(tmp_path)
    section = "https://site-a.example/news/"
    first = listing("a", STORIES["kim-train"], "world", url="https://site-a.example/news/kim-train-1",
                    canonical_url=section)
    second = listing("a", STORIES["fed-hold"], "world", minutes=5, url="https://site-a.example/news/fed-holds-2",
                     canonical_url=section)
    [o1] = st.process(first)
    [o2] = st.process(second)
    assert (o1.topic, o1.value["dedupe"]["status"], o1.key) == (topics.ARTICLES_UNIQUE, "unique", "id-a")
    assert (o2.topic, o2.value["dedupe"]["status"]) == (topics.ARTICLES_UNIQUE, "unique")
    own = article_id("https://site-a.example/news/fed-holds-2")
    assert o2.key == o2.value["id"] == own != "id-a"
    assert o2.value["canonical_url"] == "https://site-a.example/news/fed-holds-2"
    assert o2.value["dedupe"]["shared_id"] == "id-a" and o2.value["dedupe"]["cluster_id"] == "c-" + own
    # redelivered: the same outputs; an edit of the second story is an update of the second story
    assert st.process(second) == [o2]
    assert st.process(first) == [o1]
    edited = dict(second, text=STORIES["fed-hold"].replace("Powell", "Jerome Powell"), minutes=9, is_update=True)
    [o3] = st.process(edited)
    assert (o3.key, o3.value["dedupe"]["status"], o3.value["dedupe"]["cluster_id"]) == (own, "update", "c-" + own)
    st.commit()
    st.close()
    st = stage(tmp_path)
    assert st.process(second) == [o2]
    # a copy of the second story elsewhere is a duplicate of the second story, not of the first
    topic, d = one(st, article("z", wrap(STORIES["fed-hold"]), minutes=20))
    assert (topic, d["duplicate_of"]) == (topics.ARTICLES_DUPLICATES, own)


def test_edits_arrive_once_and_unchanged_refetches_do_not(tmp_path):
    st = stage(tmp_path)
    text = STORIES["drug-approval"]
    v1 = listing("a", text, "world", polled_at="2024-03-01T08:00:00Z")
    [o1] = st.process(v1)
    # the entry polled again (an `updated` bump), page text unchanged: nothing for consumers
    assert st.process(dict(v1, polled_at="2024-03-01T09:00:00Z", is_update=True)) == []
    # a correction: an update of the story, on the story's topic, once
    fixed = text.replace("approved", "conditionally approved", 1)
    assert fixed != text
    v2 = dict(v1, text=fixed, polled_at="2024-03-01T10:00:00Z", is_update=True)
    [o2] = st.process(v2)
    assert (o2.topic, o2.key, o2.value["dedupe"]["status"]) == (topics.ARTICLES_UNIQUE, "id-a", "update")
    assert st.process(dict(v2, polled_at="2024-03-01T11:00:00Z")) == []
    # a replay of either message (crash before commit) gets its output again
    assert st.process(v2) == [o2] and st.process(v1) == [o1]
    # the correction reverted: the old text is the story's text again, an update
    [o3] = st.process(dict(v1, polled_at="2024-03-01T12:00:00Z", is_update=True))
    assert o3.value["dedupe"]["status"] == "update"


def test_a_slug_change_is_an_update_of_the_story_under_its_id(tmp_path):
    st = stage(tmp_path)
    text = STORIES["museum-heist"]
    v1 = listing("a", text, "world", polled_at="2024-03-01T08:00:00Z")
    v1["entry_id"] = "tag:site-a.example,2024:42"
    [o1] = st.process(v1)
    # the publisher edits the headline and the slug: new link, new canonical, new id; same GUID
    moved = dict(v1, id="id-a2", url="https://site-a.example/new-slug", canonical_url="https://site-a.example/new-slug",
                 text=text.replace("museum", "Museum", 1), polled_at="2024-03-01T09:00:00Z", is_update=True)
    [o2] = st.process(moved)
    assert (o2.topic, o2.key, o2.value["id"]) == (topics.ARTICLES_UNIQUE, "id-a", "id-a")
    assert o2.value["dedupe"]["status"] == "update" and o2.value["dedupe"]["cluster_id"] == "c-id-a"
    assert o2.value["canonical_url"] == "https://site-a.example/new-slug"
    assert not any(o.topic == topics.ARTICLES_DUPLICATES for o in st.process(moved))  # replay: same
    # another site's entry with the same short GUID is not this story
    other = listing("b", STORIES["fed-hold"], "world", polled_at="2024-03-01T09:00:00Z")
    other["entry_id"] = "42"
    assert one(st, other)[1]["status"] == "unique"


# --- a source's own chrome, and short stories inside long texts (issue 14, build 4) -----------------

def _chrome_set(**kw) -> list[dict]:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("chrome_set", DATA / "chrome_set.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate(**kw)


def _pairs(labels, clusters):
    from collections import Counter

    def n(c):
        return sum(k * (k - 1) // 2 for k in c.values())
    tp = n(Counter(zip(labels, clusters)))
    return tp, n(Counter(clusters)) - tp, n(Counter(labels)) - tp  # tp, fp, fn


def test_stories_behind_one_sites_heavy_chrome_stay_apart_and_copies_are_found(tmp_path):
    articles = _chrome_set(sites=4, per_site=60, seed=3, copy_share=0.15)
    labels = [a["label"] for a in articles]
    st = stage(tmp_path)
    clusters = [o.value["dedupe"]["cluster_id"] for r in st.process_batch([dict(a) for a in articles]) for o in r]
    tp, fp, fn = _pairs(labels, clusters)
    assert fp == 0 and tp >= 0.85 * (tp + fn) and tp > 20
    # without the per-source filter the same stream merges distinct stories
    off = stage(tmp_path / "off", source_chrome=False)
    clusters = [o.value["dedupe"]["cluster_id"] for r in off.process_batch([dict(a) for a in articles]) for o in r]
    assert _pairs(labels, clusters)[1] > 0


def test_what_a_source_repeats_is_remembered_across_a_restart(tmp_path):
    articles = _chrome_set(sites=2, per_site=30, seed=4, copy_share=0.0)
    head, tail = articles[:40], articles[40:]
    never_stopped = stage(tmp_path / "a")
    expected = never_stopped.process_batch([dict(a) for a in articles])
    st = stage(tmp_path / "b")
    got = st.process_batch([dict(a) for a in head])
    st.commit()
    st.close()
    st = stage(tmp_path / "b")
    assert st.deduper.chrome is not None and len(st.deduper.chrome.sources) == 2
    got += st.process_batch([dict(a) for a in tail])
    assert got == expected
    assert all(r[0].value["dedupe"]["status"] == "unique" for r in got)


def test_a_short_story_is_not_swallowed_by_a_long_text_holding_it(tmp_path):
    st = stage(tmp_path)
    short = STORIES["museum-heist"].split("\n\n")[0] + "\n\n" + STORIES["museum-heist"].split("\n\n")[1]
    digest = "\n\n".join(STORIES[k] for k in ("kim-train", "fed-hold", "quake-toll", "wildfire-ca", "mars-rover",
                                              "rail-strike", "drug-approval"))  # kim-train: 1/5 of it
    assert one(st, article("kim", STORIES["kim-train"]))[1]["status"] == "unique"
    # a digest holding that story and others is not its copy, nor is the story a copy of it
    assert one(st, article("digest", digest + "\n\n" + short, minutes=1))[1]["status"] == "unique"
    topic, d = one(st, article("short", short, minutes=5))
    assert (topic, d["status"]) == (topics.ARTICLES_UNIQUE, "unique")
    # a truncated copy (half the story) still is a copy
    topic, d = one(st, article("half", half(STORIES["kim-train"], 0.5), minutes=6))
    assert (d["status"], d["duplicate_of"]) == ("duplicate", "id-kim")


# --- originals first (issue 14, build 5) -------------------------------------------------------------

def test_an_original_arriving_after_its_credited_copy_becomes_the_clusters_story(tmp_path):
    st = stage(tmp_path)
    story = STORIES["drug-approval"]
    copy = article("copy", wrap(story, "Metro") + "\n\nThis story was originally published by ProPublica.",
                   url="https://metro.example/a/1", canonical_url="https://metro.example/a/1", source="Metro")
    [c] = st.process(copy)
    assert (c.topic, c.value["dedupe"]["status"]) == (topics.ARTICLES_UNIQUE, "unique")
    original = article("orig", story, minutes=30, url="https://www.propublica.org/article/drug",
                       canonical_url="https://www.propublica.org/article/drug", source="ProPublica")
    [o] = st.process(original)
    assert o.topic == topics.ARTICLES_UNIQUE
    assert o.value["dedupe"] == {"status": "unique", "cluster_id": "c-id-copy", "duplicate_of": None,
                                 "similarity": None, "signal": "original", "supersedes": "id-copy"}
    assert st.process(original) == [o]  # a replay: the same
    # later copies name the original; the superseded copy's edits are a copy's edits
    _, d = one(st, article("late", half(story, 0.7), minutes=40))
    assert (d["status"], d["cluster_id"], d["duplicate_of"]) == ("duplicate", "c-id-copy", "id-orig")
    topic, d = one(st, dict(copy, text=copy["text"] + " Updated.", is_update=True))
    assert (topic, d["status"], d["duplicate_of"]) == (topics.ARTICLES_DUPLICATES, "update", "id-orig")
    st.commit()
    st.close()
    st = stage(tmp_path)  # remembered across a restart
    _, d = one(st, article("later", wrap(half(story, 0.6), "Daily"), minutes=50))
    assert d["duplicate_of"] == "id-orig"


def test_the_earliest_published_copy_is_the_original(tmp_path):
    st = stage(tmp_path)
    story = STORIES["rail-strike"]
    t = "2024-03-01T10:00:00+00:00"
    one(st, article("copy", wrap(story), published=t))
    # published two hours before the copy, fetched after it: the original
    _, d = one(st, article("wire", story, minutes=5, published="2024-03-01T08:00:00+00:00"))
    assert (d["status"], d["signal"], d["supersedes"]) == ("unique", "original", "id-copy")
    # half an hour earlier is not enough to call it the original (clocks, time zones)
    one(st, article("x", STORIES["vance-launch"], published=t))
    topic, d = one(st, article("y", wrap(STORIES["vance-launch"]), minutes=6, published="2024-03-01T09:30:00+00:00"))
    assert (topic, d["status"], d["duplicate_of"]) == (topics.ARTICLES_DUPLICATES, "duplicate", "id-x")


def test_text_hashes_are_sign_batchs():
    from pipeline.dedupe.signatures import sign_batch, text_hashes

    texts = [STORIES["kim-train"], "", "one two", wrap(STORIES["fed-hold"]), "Ünïcode — “quotes” 42"]
    assert text_hashes(texts) == sign_batch(texts).text_hash


def test_sign_batch_without_some_lines_is_sign_of_the_text_without_them():
    # dedupe signs a text without its source's chrome lines: the sample must be exactly
    # sign() of the text with those lines removed, the text hash that of the whole text
    r = random.Random(7)
    vocab = [f"w{i}" for i in range(200)] + ["Ünïcode", "“quoted”", "naïve—dash", "U.S.", "a"]
    texts = ["\n".join(" ".join(r.choice(vocab) for _ in range(r.choice([0, 1, 2, 3, 8, 40, 90])))
                       for _ in range(r.randint(1, 12))) for _ in range(150)] + ["", "\n\n", "one\ntwo"]
    dropped: dict[int, list[int]] = {}
    seen: list[tuple[int, list, list]] = []

    def strip(t, hashes, words):
        seen.append((t, hashes, words))
        lines = texts[t].split("\n")
        assert len(hashes) == len(words) == len(lines)
        assert words == [sign(ln).words for ln in lines]
        assert all((h == 0) == (w < 3) for h, w in zip(hashes, words))
        out = [j for j in range(len(lines)) if r.random() < 0.3]
        dropped[t] = out
        return out or None

    b = sign_batch(texts, strip=strip)
    assert [t for t, _, _ in seen] == list(range(len(texts)))  # every text, in order
    for t, text in enumerate(texts):
        kept = "\n".join(ln for j, ln in enumerate(text.split("\n")) if j not in dropped[t])
        want, got = sign(kept), b.signature(t)
        assert (got.tau, got.words) == (want.tau, want.words)
        assert np.array_equal(got.sample, want.sample)
        assert got.text_hash == sign(text).text_hash


def test_line_hashes_ignore_case_punctuation_and_spacing():
    got: dict[int, list[int]] = {}
    sign_batch(["Read more: our  Newsletter, today!\nread more our newsletter today\nRead more, our letter today"
                "\nshort line"], strip=lambda t, h, w: got.setdefault(t, h) and None)
    a, b, c, d = got[0]
    assert a == b != c and a != 0 and c != 0 and d == 0


def test_credited_keys_is_credited_key_text_by_text():
    from pipeline.dedupe.engine import credited_key, credited_keys

    r = random.Random(3)
    bits = ["This story was originally published by ProPublica.", "It first appeared in The Texas Tribune",
            "first ran on", "first rain", "Originally\npublished by X", "the first time", "originally ",
            "FIRST POSTED AT Reuters", "first published", "word", "Ünïcode", "\n", "irst ran ", "riginally"]
    texts = ["".join(r.choice(bits) + r.choice([" ", "", "\n"]) for _ in range(r.randint(0, 6))) for _ in range(400)]
    texts += ["", "originally published by The Guardian", "x first appeared at the BBC"]
    assert credited_keys(texts) == [credited_key(t) for t in texts]
    assert any(credited_keys(texts)) and credited_keys([]) == []


def test_chrome_state_of_the_first_layout_is_learned_afresh():
    # rows written before line hashes came from normalised words (raw-line blake2b hashes)
    # cannot be compared with today's: such a source starts over instead of failing to load
    from pipeline.dedupe.chrome import ChromeFilter

    old_head = np.array([5, 1, 6, 2, 40], dtype=np.int64).tobytes()  # seen, stories, len(ids), lines, words
    old = old_head + b"id-old" + np.array([11, 22], dtype=np.int64).tobytes() + np.array([33], dtype=np.int64).tobytes()
    cf = ChromeFilter()
    cf.load([("site.example", 7, old), ("tiny.example", 3, np.array([0, 0, 0], dtype=np.int64).tobytes())])
    s = cf.sources["site.example"]
    assert (s.recent, s.chrome, s.seen) == ([], {}, 0) and cf.seq == 8
    header, footer = "Site header with menu links here", "Copyright site footer all rights reserved"
    v = {"url": "https://site.example/a"}
    for n in range(3):  # learned again from its next stories: chrome from the third on
        b = sign_batch([f"{header}\nstory {n} " + "word " * 40 + f"\n{footer}"], strip=lambda t, h, w: cf.strip(
            v, f"id-{n}", h, w))
        assert b.words[0] == (54 if n < 2 else 54 - 12)  # header and footer: 12 words
    rows, _ = cf.dump()
    again = ChromeFilter()
    again.load(rows)
    assert again.sources["site.example"].chrome == s.chrome and again.sources["site.example"].seen == 3
