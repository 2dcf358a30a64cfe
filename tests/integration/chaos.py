"""The chaos scenario shared by ``test_chaos.py`` (CI size) and ``bench/chaos_soak.py`` (soak).

Thousands of generated articles flow through all five stages on Kafka, one
``pipeline worker STAGE`` process per stage, while a supervisor kills a random
worker with SIGKILL every few seconds and starts it again, restarts any worker that
exited by itself (the runner's watchdog exits 70 when a client call hangs), and
restarts the broker once.  When every story is on ``articles.enriched`` the workers
are asked to stop (SIGTERM, exit 0 expected) and a read_committed reader counts what
a downstream consumer sees.

``SiteServer`` serves the input on loopback from the test process: ``feeds`` RSS
feeds of ``per_feed`` entries, each linking to an article page of ~80-120 words
generated from a seeded vocabulary (names, organisations, places: work for NER; no
two articles share a sentence, so dedupe keeps them apart and boilerplate finds no
template in them).  The first ``copy_feeds`` feeds also list ``copies_per_feed``
pages at other URLs carrying an exact copy of another feed's article: dedupe must send
one of each pair to ``articles.duplicates``.  A *story* is an original and its copies;
each story must reach ``articles.enriched`` under exactly one id.
"""

from __future__ import annotations

import html
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from pipeline import models, stages, topics
from pipeline.bus import open_bus
from pipeline.config import Settings
from pipeline.errors import TransportError
from pipeline.urls import article_id

from integration.workers import read_topic, start_worker, write_config

# --- the input ------------------------------------------------------------------------

FIRST = ["Amelia", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ingrid", "Jonas",
         "Kofi", "Lucia", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Samir", "Tove",
         "Ulrich", "Valeria", "Wei", "Ximena", "Yusuf", "Zofia"]
LAST = ["Abbott", "Barros", "Castellano", "Dubois", "Eriksen", "Fitzgerald", "Gallagher", "Hoffmann",
        "Iwasaki", "Jaramillo", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
        "Quinlan", "Rasmussen", "Schneider", "Takahashi", "Underwood", "Varga", "Whitfield", "Zeller"]
ORGS = ["the Harbor Authority", "Northwind Energy", "the Ministry of Transport", "Bluefield Bank",
        "the City Council", "Meridian Health", "the Port Workers Union", "Atlas Logistics",
        "the National Weather Service", "Greenleaf Farms", "the University of Halden", "Copperline Mining",
        "the Regional Water Board", "Silverbay Airlines", "the Chamber of Commerce", "Kestrel Robotics"]
PLACES = ["Halifax", "Bergen", "Lyon", "Porto", "Tampere", "Gdansk", "Valencia", "Dundee", "Trieste",
          "Aarhus", "Cork", "Bilbao", "Utrecht", "Graz", "Tallinn", "Ghent", "Malmo", "Brno", "Leeds", "Split"]
NOUNS = ["ferry service", "budget", "pipeline", "housing plan", "bridge", "harbour expansion", "school",
         "hospital wing", "bus route", "wind farm", "water main", "library", "rail link", "market hall",
         "tax proposal", "flood barrier", "airport terminal", "clinic", "stadium", "research centre",
         "cycle lane", "power plant", "fishing quota", "tram line", "recycling scheme", "port crane"]
VERBS = ["approved", "delayed", "rejected", "expanded", "reviewed", "funded", "paused", "announced",
         "criticised", "defended", "redesigned", "inspected", "reopened", "postponed", "cancelled", "praised"]
ADJ = ["cautious", "sharp", "lengthy", "unexpected", "heated", "brief", "public", "closed", "tense",
       "careful", "formal", "informal", "late", "early", "second", "final"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def _person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


# No run of five words (dedupe's shingle) is fixed text: a random slot comes at least every
# third word, so two articles share a shingle only by chance and never look near-duplicate.
SENTENCES: list[Callable[[random.Random], str]] = [
    lambda r: f"{_person(r)} {r.choice(VERBS)} the {r.choice(ADJ)} {r.choice(NOUNS)} in {r.choice(PLACES)} "
              f"on {r.choice(DAYS)}.",
    lambda r: f"{r.choice(ORGS)} {r.choice(VERBS)} {r.randint(2, 990)} {r.choice(ADJ)} plans near "
              f"{r.choice(PLACES)} last {r.choice(MONTHS)}.",
    lambda r: f"According to {_person(r)}, {r.choice(ORGS)} {r.choice(VERBS)} the {r.choice(NOUNS)} after "
              f"{r.randint(2, 60)} {r.choice(ADJ)} weeks.",
    lambda r: f"{_person(r)} of {r.choice(ORGS)} met {_person(r)} in {r.choice(PLACES)} {r.randint(2, 90)} days "
              f"before the {r.choice(ADJ)} vote.",
    lambda r: f"{r.randint(12, 9000)} residents of {r.choice(PLACES)} asked {r.choice(ORGS)} about the "
              f"{r.choice(ADJ)} {r.choice(NOUNS)} on {r.choice(DAYS)}.",
    lambda r: f"In {r.choice(MONTHS)}, {_person(r)} {r.choice(VERBS)} {r.randint(3, 97)} percent of the "
              f"{r.choice(NOUNS)} in {r.choice(PLACES)}.",
]


@dataclass(frozen=True)
class Article:
    path: str              # /siteK/news/N.html
    title: str
    author: str
    paragraphs: tuple[str, ...]
    published: float       # epoch seconds

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


def make_article(seed: int, site: int, n: int, path: str | None = None) -> Article:
    """A distinct article of ~80-120 words: same (seed, site, n), same article."""
    r = random.Random(f"{seed}/{site}/{n}")
    paragraphs, words = [], 0
    target = r.randint(75, 105)  # the last paragraph adds up to ~30
    while words < target:
        para = " ".join(r.choice(SENTENCES)(r) for _ in range(r.randint(1, 2)))
        paragraphs.append(para)
        words += len(para.split())
    org = r.choice(ORGS)
    title = f"{org[0].upper()}{org[1:]} {r.choice(VERBS)} {r.choice(NOUNS)} in {r.choice(PLACES)} ({site}-{n})"
    return Article(path=path or f"/site{site}/news/{n}.html", title=title, author=_person(r),
                   paragraphs=tuple(paragraphs), published=1_760_000_000 + site * 100_000 + n * 600)


@dataclass
class Corpus:
    """What the feeds carry, and which ids are the same story."""

    seed: int
    feeds: int
    per_feed: int
    copy_feeds: int = 2
    copies_per_feed: int = 5
    articles: dict[str, Article] = field(default_factory=dict)     # path -> article
    feed_items: dict[int, list[str]] = field(default_factory=dict)  # feed -> paths

    def __post_init__(self) -> None:
        for s in range(self.feeds):
            paths = []
            for n in range(self.per_feed):
                a = make_article(self.seed, s, n)
                self.articles[a.path] = a
                paths.append(a.path)
            self.feed_items[s] = paths
        r = random.Random(self.seed)
        self.copy_of: dict[str, str] = {}   # copy path -> original path
        for s in range(min(self.copy_feeds, self.feeds)):
            others = [p for k, ps in self.feed_items.items() if k != s for p in ps if p not in self.copy_of.values()]
            for j, orig in enumerate(r.sample(others, min(self.copies_per_feed, len(others)))):
                a = self.articles[orig]
                copy = Article(path=f"/site{s}/syndicated/{j}.html", title=a.title, author=a.author,
                               paragraphs=a.paragraphs, published=a.published + 3600)
                self.articles[copy.path] = copy
                self.copy_of[copy.path] = orig
                self.feed_items[s].append(copy.path)

    @property
    def entries(self) -> int:
        return sum(len(p) for p in self.feed_items.values())

    def stories(self, base_url: str) -> dict[str, frozenset[str]]:
        """Story (the original's id) -> the ids of every copy of it, the original included."""
        out: dict[str, set[str]] = {}
        for path in self.articles:
            orig = self.copy_of.get(path, path)
            out.setdefault(article_id(base_url + orig), set()).add(article_id(base_url + path))
        return {k: frozenset(v) for k, v in out.items()}


def _page(base: str, a: Article, site: int) -> bytes:
    url = base + a.path
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in a.paragraphs)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.published))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(a.title)} | Chaos Courier {site}</title>
<link rel="canonical" href="{url}">
<meta property="og:site_name" content="Chaos Courier {site}">
<meta property="og:title" content="{html.escape(a.title)}">
<meta name="author" content="{html.escape(a.author)}">
<meta property="article:published_time" content="{when}">
</head><body>
<header><nav><a href="/site{site}/">Home</a> <a href="/site{site}/news/">News</a> <a href="/site{site}/about">About us</a></nav></header>
<main><article><h1>{html.escape(a.title)}</h1>
<p class="byline">By {html.escape(a.author)}</p>
{body}
</article></main>
<footer><p>Copyright Chaos Courier {site}. All rights reserved.</p><p>Subscribe to our newsletter for the latest news.</p></footer>
</body></html>""".encode()


def _feed(base: str, corpus: Corpus, site: int) -> bytes:
    items = []
    for path in corpus.feed_items[site]:
        a = corpus.articles[path]
        # The whole text as the description: should a page fetch fail, the extractor's
        # fallback to the feed content still has a full article (no dead letter).
        items.append(f"""<item><title>{html.escape(a.title)}</title><link>{base}{path}</link>
<guid isPermaLink="true">{base}{path}</guid><pubDate>{formatdate(a.published, usegmt=True)}</pubDate>
<dc:creator>{html.escape(a.author)}</dc:creator>
<description>{html.escape(" ".join(a.paragraphs))}</description></item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Chaos Courier {site}</title><link>{base}/site{site}/</link><description>Generated news</description>
<language>en</language>
{chr(10).join(items)}
</channel></rss>""".encode()


class SiteServer:
    """The corpus on http://127.0.0.1:PORT, from a thread of this process."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.hits = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                body, ctype = outer._lookup(self.path.split("?", 1)[0])
                outer.hits["feed" if ctype and "rss" in ctype else "page" if ctype else "404"] += 1
                status = 200 if body is not None else 404
                body = body if body is not None else b"not found"
                self.send_response(status)
                self.send_header("Content-Type", ctype or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="chaos-sites", daemon=True)

    def _lookup(self, path: str) -> tuple[bytes | None, str | None]:
        if path.endswith("/feed.xml"):
            try:
                site = int(path.split("/")[1].removeprefix("site"))
            except ValueError:
                return None, None
            if site in self.corpus.feed_items:
                return _feed(self.base_url, self.corpus, site), "application/rss+xml; charset=utf-8"
        a = self.corpus.articles.get(path)
        if a is not None:
            return _page(self.base_url, a, int(path.split("/")[1].removeprefix("site"))), "text/html; charset=utf-8"
        return None, None

    @property
    def feeds(self) -> list[dict]:
        return [{"url": f"{self.base_url}/site{s}/feed.xml", "name": f"Chaos Courier {s}", "interval": 86400}
                for s in self.corpus.feed_items]

    def __enter__(self) -> "SiteServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- the configuration ------------------------------------------------------------------

def config_doc(bootstrap: str, guarantee: str, feeds: list[dict], state_dir: Path) -> dict:
    prefix = f"chaos{uuid.uuid4().hex[:8]}."
    return {
        "transport": {"kind": "kafka", "topic_prefix": prefix,
                      "kafka": {"bootstrap_servers": bootstrap, "processing_guarantee": guarantee,
                                "group_id_prefix": prefix, "partitions": 2,
                                # A SIGKILLed member leaves the group after this long; until then
                                # its partitions wait (the rebalance waits for it).
                                "session_timeout_ms": 6000,
                                # Transactional ids are per process, so a killed worker's open
                                # transaction is not fenced by its successor: the broker aborts it
                                # after this timeout, and read_committed readers wait until then.
                                "transaction_timeout_ms": 10000,
                                # Keeps a hung poll's replacement (poll_timeout + this + 5 s)
                                # inside the watchdog's 30 s.
                                "request_timeout_ms": 15000,
                                "startup_timeout_s": 120}},
        "state_dir": str(state_dir),
        "feeds": feeds,
        "fetch": {"allow_private_addresses": True, "per_host_concurrency": 8},
        "poll": {"interval_default": 86400, "interval_min": 86400, "interval_max": 86400, "adaptive": False,
                 "backfill": "all", "backoff_initial": 2, "backoff_max": 10},
        "extract": {"batch_size": 10},
        "dedupe": {"batch_size": 20},
        "boilerplate": {"batch_size": 20},
        "enrich": {"batch_size": 5},
        "runner": {"poll_timeout": 0.5, "stall_exit_after": 30},
    }


# --- the run ----------------------------------------------------------------------------

def dedupe_merged(settings: Settings) -> dict[str, str]:
    """Id -> duplicate_of of each article dedupe sent to articles.duplicates."""
    try:
        return {v["id"]: v["dedupe"].get("duplicate_of") for v in
                (models.decode(m.value) for m in read_topic(settings, topics.ARTICLES_DUPLICATES, settle=0.3))}
    except TransportError:
        return {}


class EnrichedCounter:
    """Keys read so far from articles.enriched (read_committed), read incrementally.
    A transport error drops the reader; the next refresh starts again from the beginning."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.bus = None
        self.keys: set[str] = set()

    def refresh(self, budget: float = 5.0) -> set[str]:
        deadline = time.monotonic() + budget
        try:
            if self.bus is None:
                self.keys = set()
                self.bus = open_bus(self.settings, client_id="chaos-progress")
                self.bus.assign([self.settings.topic(topics.ARTICLES_ENRICHED)], from_beginning=True)
            while time.monotonic() < deadline:
                got = self.bus.poll(1000, 0.3)
                self.keys.update(m.key.decode() for m in got if m.key)
                if not got:
                    break
        except TransportError:
            self.close()
        return self.keys

    def close(self) -> None:
        if self.bus is not None:
            try:
                self.bus.close()
            except Exception:  # noqa: BLE001 - best effort
                pass
            self.bus = None


@dataclass
class Report:
    guarantee: str
    entries: int = 0
    stories: int = 0
    kills: Counter = field(default_factory=Counter)
    self_exits: Counter = field(default_factory=Counter)   # stage -> count
    exit_codes: Counter = field(default_factory=Counter)   # code -> count
    broker_restarts: int = 0
    broker_restart_seconds: float = 0.0
    seconds: float = 0.0
    enriched_messages: int = 0
    enriched_distinct: int = 0
    duplicates: int = 0
    lost: int = 0
    split: int = 0          # stories with more than one id on articles.enriched
    merged: int = 0         # stories dedupe judged near-duplicates of another story
    unexpected: int = 0     # ids that are no story's
    dead_letters: dict[str, int] = field(default_factory=dict)
    stop_codes: dict[str, int | None] = field(default_factory=dict)
    values: list[dict] = field(default_factory=list)             # articles.enriched, in order
    story_ids: dict[str, frozenset[str]] = field(default_factory=dict)  # story -> its ids

    def table(self) -> str:
        rows = [("guarantee", self.guarantee), ("run time (s)", f"{self.seconds:.0f}")]
        rows += [(f"kill -9 {s}", str(self.kills[s])) for s in stages.NAMES]
        rows += [("kill -9 total", str(sum(self.kills.values()))),
                 ("self-exits (by stage)", ", ".join(f"{s}={n}" for s, n in sorted(self.self_exits.items())) or "0"),
                 ("self-exit codes", ", ".join(f"{c}x{n}" for c, n in sorted(self.exit_codes.items())) or "-"),
                 ("broker restarts", f"{self.broker_restarts} ({self.broker_restart_seconds:.0f}s)"),
                 ("feed entries in", str(self.entries)),
                 ("stories (distinct texts)", str(self.stories)),
                 ("enriched messages", str(self.enriched_messages)),
                 ("enriched distinct ids", str(self.enriched_distinct)),
                 ("duplicated", str(self.duplicates)),
                 ("lost", str(self.lost)),
                 ("stories under >1 id", str(self.split)),
                 ("merged by dedupe", str(self.merged)),
                 ("unexpected ids", str(self.unexpected)),
                 ("dead letters", ", ".join(f"{t}={n}" for t, n in self.dead_letters.items() if n) or "0"),
                 ("SIGTERM exit codes", ", ".join(f"{s}={c}" for s, c in self.stop_codes.items()))]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def run_chaos(*, bootstrap: str, guarantee: str, workdir: Path, restart_broker: Callable[[], None] | None,
              feeds: int = 20, per_feed: int = 100, seed: int = 9, kill_every: tuple[float, float] = (2.0, 5.0),
              min_uptime: float = 30.0, timeout: float = 420.0, min_duration: float = 0.0, min_kills: int = 0,
              broker_restart_at: float = 0.3, broker_restart_after: float = 120.0,
              say: Callable[[str], None] = print) -> Report:
    """Run the scenario; return what a read_committed consumer of articles.enriched saw.

    A worker is killed only once it has run ``min_uptime`` seconds: a Python worker needs
    ~10-20 s on a busy 2-core machine to import, join its group and (enrich) load its
    model, and one killed before that proves nothing and moves nothing.  Kills stop once every story is on
    articles.enriched, ``min_duration`` has passed and ``min_kills`` kills were made (a fast run
    goes on killing its idle workers: each restart must still emit nothing twice)
    or at ``timeout``; either way every worker is stopped (SIGTERM, then SIGKILL after 60 s)
    before this returns or raises.  The broker is restarted once, in a thread, when
    ``broker_restart_at`` of the stories are through or ``broker_restart_after`` seconds
    have passed, whichever comes first.
    """
    rng = random.Random(seed)
    corpus = Corpus(seed, feeds, per_feed)
    report = Report(guarantee, entries=corpus.entries)
    workdir.mkdir(parents=True, exist_ok=True)
    logs = {s: workdir / f"{s}.log" for s in stages.NAMES}
    procs: dict[str, subprocess.Popen] = {}
    counter: EnrichedCounter | None = None
    broker_thread: threading.Thread | None = None
    broker_error: list[BaseException] = []
    with SiteServer(corpus) as server:
        stories = corpus.stories(server.base_url)
        id_story = {i: s for s, ids in stories.items() for i in ids}
        report.stories = len(stories)
        cfg = workdir / "pipeline.yaml"
        settings = write_config(cfg, config_doc(bootstrap, guarantee, server.feeds, workdir / "state"))
        counter = EnrichedCounter(settings)
        started = time.monotonic()
        try:
            born: dict[str, float] = {}
            starts: Counter = Counter()

            def spawn(stage: str) -> subprocess.Popen:
                starts[stage] += 1
                return start_worker(stage, cfg, logs[stage])

            for s in stages.NAMES:
                procs[s] = spawn(s)
                born[s] = started
            next_kill = started + rng.uniform(*kill_every)
            next_check = started + 5
            done = False
            while True:
                now = time.monotonic()
                for s, p in procs.items():  # exited by itself (watchdog 70, a crash): count, restart
                    code = p.poll()
                    if code is not None:
                        report.self_exits[s] += 1
                        report.exit_codes[code] += 1
                        say(f"chaos: {s} exited by itself with {code} at {now - started:.0f}s; restarting")
                        procs[s] = spawn(s)
                        born[s] = now
                if now >= next_check:
                    merged = dedupe_merged(settings)
                    have = {id_story[k] for k in counter.refresh() | set(merged) if k in id_story}
                    next_check = time.monotonic() + 3
                    say(f"chaos: {now - started:5.0f}s  {len(have)}/{len(stories)} stories enriched, "
                        f"{sum(report.kills.values())} kills, {sum(report.self_exits.values())} self-exits")
                    if restart_broker is not None and broker_thread is None and (len(have) >= broker_restart_at * len(stories)
                                                                              or now - started >= broker_restart_after):
                        def bounce() -> None:
                            t0 = time.monotonic()
                            try:
                                restart_broker()
                            except BaseException as exc:  # noqa: BLE001 - reported by the main loop
                                broker_error.append(exc)
                            report.broker_restart_seconds = time.monotonic() - t0
                        say(f"chaos: restarting the broker at {now - started:.0f}s")
                        report.broker_restarts += 1
                        broker_thread = threading.Thread(target=bounce, name="broker-restart", daemon=True)
                        broker_thread.start()
                    broker_done = restart_broker is None or (broker_thread is not None and not broker_thread.is_alive())
                    if (len(have) == len(stories) and broker_done and now - started >= min_duration
                            and sum(report.kills.values()) >= min_kills):
                        done = True
                        break
                if now - started > timeout:
                    break
                eligible = [s for s in stages.NAMES if now - born[s] >= min_uptime]
                if now >= next_kill and eligible:
                    victim = rng.choice(eligible)
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait(30)
                    report.kills[victim] += 1
                    procs[victim] = spawn(victim)
                    born[victim] = time.monotonic()
                    next_kill = time.monotonic() + rng.uniform(*kill_every)
                time.sleep(0.2)
            if broker_error:
                raise AssertionError(f"the broker restart failed: {broker_error[0]}")
            if not done:
                report.seconds = time.monotonic() - started
                raise AssertionError(
                    f"timed out after {timeout:.0f}s: {len(counter.keys)} ids on articles.enriched for "
                    f"{len(stories)} stories; worker logs in {workdir}\n{report.table()}")
            # Stop asking for trouble: let every worker finish its batch and exit 0.  A worker
            # still importing has no SIGTERM handler yet and would die of the signal: first
            # wait (bounded) until each one's log says its loop started.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(
                    logs[s].read_text(errors="replace").count(f"{s}: started (") < starts[s] for s in procs):
                time.sleep(0.5)
            for s, p in procs.items():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for s, p in procs.items():
                try:
                    report.stop_codes[s] = p.wait(60)
                except subprocess.TimeoutExpired:
                    report.stop_codes[s] = None  # hung on the way out: killed in the finally below
            report.seconds = time.monotonic() - started
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait(30)
            if counter is not None:
                counter.close()
            if broker_thread is not None:
                broker_thread.join(300)   # never leave the broker down for the next test

    msgs = read_topic(settings, topics.ARTICLES_ENRICHED, settle=3.0)
    keys = Counter(m.key.decode() for m in msgs)
    report.values = [models.decode(m.value) for m in msgs]
    report.enriched_messages = len(msgs)
    report.enriched_distinct = len(keys)
    report.duplicates = sum(c - 1 for c in keys.values())
    # An id that dedupe sent to articles.duplicates as a near-duplicate of a different story
    # (generated texts can look alike to its sampled hashes) is accounted for, not lost.
    merged = {k: d for k, d in dedupe_merged(settings).items() if d in keys}
    report.merged = sum(1 for k in merged if id_story.get(k) != id_story.get(merged[k]))
    found = Counter(id_story[k] for k in keys if k in id_story)
    for k in merged:
        if k in id_story and id_story[k] not in found:
            found[id_story[k]] = 1
    report.lost = len(stories) - len(found)
    report.split = sum(1 for n in found.values() if n > 1)
    report.unexpected = sum(1 for k in keys if k not in id_story)
    for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED, topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN):
        try:
            report.dead_letters[topics.dlq(t)] = len(read_topic(settings, topics.dlq(t), settle=0.5))
        except TransportError:
            report.dead_letters[topics.dlq(t)] = -1
    report.story_ids = stories
    return report


# --- a stateful worker moved to an empty state_dir mid-run (issue 15) ---------------------

_PROMO = "Support local reporting from {site}: become a member of the {site} newsroom today."


def _extracted(aid: str, site: str, a: Article, paragraphs: list[str], published: float) -> dict:
    """An articles.extracted value, as extract writes it (the fields dedupe and boilerplate read)."""
    url = f"https://{site}.example{a.path}"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(published))
    return {"schema_version": 1, "id": aid, "url": url, "canonical_url": url,
            "feed_url": f"https://{site}.example/feed.xml", "entry_id": url, "source": f"{site}.example",
            "title": a.title, "authors": [a.author], "published": when, "fetched_at": when,
            "polled_at": when, "text": "\n\n".join(paragraphs), "blocks": []}


@dataclass
class MoveReport:
    """What a consumer of articles.unique/.duplicates/.clean saw around the move."""

    guarantee: str
    originals: int = 0
    copies: int = 0
    decided: int = 0
    true_pairs: int = 0
    predicted_pairs: int = 0
    correct_pairs: int = 0
    copies_joined: int = 0       # copies whose duplicate_of is their original
    templated_after_move: int = 0
    template_removed_after_move: int = 0
    seconds: float = 0.0

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def table(self) -> str:
        return (f"  {self.guarantee}: {self.originals} originals, {self.copies} copies after the move; "
                f"{self.copies_joined}/{self.copies} copies joined their original; pairwise P {self.precision:.4f} "
                f"R {self.recall:.4f} F1 {self.f1:.4f}; template removed from {self.template_removed_after_move}/"
                f"{self.templated_after_move} new articles after the move; {self.seconds:.0f}s")


def run_state_move(*, bootstrap: str, guarantee: str, workdir: Path, originals: int = 300, copies: int = 290,
                   sites: int = 10, seed: int = 15, say: Callable[[str], None] = print) -> MoveReport:
    """Issue 15's scenario, without the poller and extract (their state is not in question):
    ``originals`` stories of ``sites`` wire sites (each with its own promo paragraph, a
    template for boilerplate) go through a dedupe and a boilerplate worker.  Then both are
    killed (SIGKILL) while the first half of ``copies`` syndicated copies (other sites,
    published an hour later: exact, with a credit line, or cut short) is arriving, and
    started again on a new, empty ``state_dir``; the second half of the copies and a few
    new articles of the wire sites follow.  Returns what a consumer saw."""
    from pipeline import state

    started = time.monotonic()
    report = MoveReport(guarantee)
    workdir.mkdir(parents=True, exist_ok=True)
    doc = config_doc(bootstrap, guarantee, [], workdir / "node-a")
    doc["transport"]["kafka"]["transaction_timeout_ms"] = 60000  # the successor aborts it (stable ids)
    doc["dedupe"] = {"batch_size": 20}
    doc["boilerplate"] = {"batch_size": 20, "templates": {"min_articles": 10, "min_share": 0.5}}
    cfg_a, cfg_b = workdir / "node-a.yaml", workdir / "node-b.yaml"
    settings = write_config(cfg_a, doc)
    write_config(cfg_b, {**doc, "state_dir": str(workdir / "node-b")})
    logs = {s: workdir / f"{s}.log" for s in ("dedupe", "boilerplate")}

    story: dict[str, str] = {}    # id -> its story (the original's id)
    orig_of: dict[str, str] = {}  # copy id -> original id
    first: list[dict] = []
    arts: list[tuple[str, Article, str]] = []
    for k in range(originals):
        site = f"wire{k % sites}"
        a = make_article(seed, k % sites, k)
        paras = list(a.paragraphs)
        paras.insert(1, _PROMO.format(site=site))
        v = _extracted(article_id(f"https://{site}.example{a.path}"), site, a, paras, a.published)
        first.append(v)
        story[v["id"]] = v["id"]
        arts.append((v["id"], a, site))
    r = random.Random(seed)
    later: list[dict] = []
    for j, (oid, a, site) in enumerate(r.sample(arts, copies)):
        paras = list(a.paragraphs)  # the wire copy: without the wire site's promo
        kind = j % 3
        if kind == 1:
            paras = [f"This story was first published by {site}."] + paras + ["Share this story."]
        elif kind == 2 and len(paras) > 2:
            paras = paras[:-1]
        host = f"daily{j % 7}"
        copy = Article(path=f"/syndicated/{j}.html", title=a.title, author=a.author, paragraphs=tuple(paras),
                       published=a.published + 3600)
        v = _extracted(article_id(f"https://{host}.example{copy.path}"), host, copy, paras, copy.published)
        later.append(v)
        story[v["id"]] = oid
        orig_of[v["id"]] = oid
    fresh: list[dict] = []  # new stories of the wire sites, after the move: their template must go
    for k in range(originals, originals + 2 * sites):
        site = f"wire{k % sites}"
        a = make_article(seed, k % sites, k)
        paras = list(a.paragraphs)
        paras.insert(1, _PROMO.format(site=site))
        v = _extracted(article_id(f"https://{site}.example{a.path}"), site, a, paras, a.published + 7200)
        fresh.append(v)
        story[v["id"]] = v["id"]
    report.originals, report.copies, report.templated_after_move = originals, copies, len(fresh)

    def publish(values: list[dict]) -> None:
        bus = open_bus(settings, client_id="move-fill")
        try:
            bus.ensure_topics([settings.topic(topics.ARTICLES_EXTRACTED)], 1)
            bus.begin()
            for v in values:
                bus.produce(settings.topic(topics.ARTICLES_EXTRACTED), v["id"].encode(), models.encode(v))
            bus.commit({})
        finally:
            bus.close()

    def decided() -> dict[str, dict]:
        out: dict[str, dict] = {}
        for t in (topics.ARTICLES_UNIQUE, topics.ARTICLES_DUPLICATES):
            try:
                for m in read_topic(settings, t, settle=0.5):
                    v = models.decode(m.value)
                    out[v["id"]] = v["dedupe"]
            except TransportError:
                pass
        return out

    def cleaned() -> dict[str, list[str]]:
        try:
            return {v["id"]: [x["reason"] for x in v["boilerplate"]["removed"]]
                    for v in (models.decode(m.value) for m in read_topic(settings, topics.ARTICLES_CLEAN, settle=0.5))}
        except TransportError:
            return {}

    def wait(pred: Callable[[], bool], what: str, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; worker logs in {workdir}")
            time.sleep(1.0)

    procs: dict[str, subprocess.Popen] = {}
    try:
        bus = open_bus(settings, client_id="move-setup")  # the topics and changelogs, as `topics create` makes them
        try:
            state.ensure_changelogs(bus, settings, ["dedupe", "boilerplate"])
        finally:
            bus.close()
        publish(first)
        for s in ("dedupe", "boilerplate"):
            procs[s] = start_worker(s, cfg_a, logs[s])
        wait(lambda: len(cleaned()) >= originals, f"{originals} originals on articles.clean")
        say(f"move: {originals} originals through dedupe and boilerplate at {time.monotonic() - started:.0f}s")

        # The node is lost mid-run: both workers die while copies arrive; new ones start on
        # another node, with an empty state_dir.
        half = copies // 2
        publish(later[:half])
        time.sleep(0.5)
        for s in ("dedupe", "boilerplate"):
            procs[s].send_signal(signal.SIGKILL)
            procs[s].wait(30)
        say(f"move: workers killed at {time.monotonic() - started:.0f}s; starting them on an empty state_dir")
        for s in ("dedupe", "boilerplate"):
            procs[s] = start_worker(s, cfg_b, logs[s])
        publish(later[half:])
        publish(fresh)
        wait(lambda: len(decided()) >= originals + copies + len(fresh), "every article decided by dedupe")
        wait(lambda: all(v["id"] in (c := cleaned()) for v in fresh) or False, "the new articles on articles.clean")
        for s, p in procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(60)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(30)

    got = decided()
    clean = cleaned()
    report.decided = len(got)
    report.copies_joined = sum(1 for c, o in orig_of.items() if got.get(c, {}).get("duplicate_of") == o)
    report.template_removed_after_move = sum(1 for v in fresh if "learned-template" in clean.get(v["id"], []))
    clusters: dict[str, set[str]] = {}
    for aid, d in got.items():
        clusters.setdefault(d["cluster_id"], set()).add(aid)
    truth: dict[str, set[str]] = {}
    for aid, s in story.items():
        truth.setdefault(s, set()).add(aid)

    def pairs(groups) -> set[frozenset[str]]:
        return {frozenset((a, b)) for g in groups for a in g for b in g if a < b}

    predicted, true = pairs(clusters.values()), pairs(truth.values())
    report.predicted_pairs, report.true_pairs = len(predicted), len(true)
    report.correct_pairs = len(predicted & true)
    report.seconds = time.monotonic() - started
    return report
