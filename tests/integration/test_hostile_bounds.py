"""Hostile inputs, round two (issue 18), end to end through the workers.

Each case is data: what the loopback server answers, and what must come of it.  One
``pipeline run --until-idle`` (local transport) polls every feed next to two honest
feeds whose articles must still reach ``articles.enriched``; the run's wall time and
peak memory are asserted under generous bounds.  Config and OPML cases run
``pipeline check-config`` / ``pipeline feeds import`` the same way, each under a memory
ceiling so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import unicodedata
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import pipeline
from pipeline import models, topics

from integration.test_hostile import _Handler, article_page, article_text, rss
from integration.workers import read_topic, write_config

# The checkout whose `pipeline` is imported: the subprocesses run the same code.
ROOT = Path(pipeline.__file__).resolve().parents[1]
H = topics.ERROR_HEADER_PREFIX
RUN_LIMIT = 240.0            # wall time of the whole run (generous: the machine is shared)
RUN_MEMORY = 1200 * 2**20    # peak RSS of any one process of the run (unbounded: 1.5+ GB on one page)
CHECK_LIMIT = 20.0           # wall time of one check-config / feeds import
CHECK_MEMORY = 400 * 2**20   # ... and its peak RSS (unbounded: 3-6 GB)
BUDGET = 200_000             # runner.max_message_bytes for the run (small: the cut is cheap to enrich)
PER_POLL = 5                 # poll.max_entries_per_poll for the run
TOPICS = list(topics.ALL) + [topics.dlq(t) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                                     topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN)]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(RUN_LIMIT) + 300)]

# Runs `python -m pipeline ...` and writes the peak RSS (KiB) of it and its children to a file.
_LAUNCHER = r"""
import atexit, resource, sys
PEAK = sys.argv.pop(1)
def report():
    kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    open(PEAK, "w").write(str(kb))
atexit.register(report)
from pipeline.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


class Ran:
    def __init__(self, proc: subprocess.CompletedProcess, elapsed: float, peak: int):
        self.proc, self.elapsed, self.peak = proc, elapsed, peak


def pipeline_cmd(*args: str, tmp: Path, timeout: float, env: dict | None = None,
                 memory: int | None = None) -> Ran:
    peak_file = tmp / f"peak-{random.getrandbits(32):08x}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
    full_env.update(env or {})

    def limit():  # a ceiling well above the bound asserted: a regression fails, the machine lives
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory * 4, memory * 4))

    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak_file), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT, env=full_env, preexec_fn=limit)
    except subprocess.TimeoutExpired as exc:
        proc = subprocess.CompletedProcess(exc.cmd, -9, exc.stdout or "", f"timed out after {timeout}s")
    elapsed = time.monotonic() - started
    peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else -1
    return Ran(proc, elapsed, peak)


# --- the cases: server responses ------------------------------------------------------------

XML = "application/rss+xml; charset=utf-8"
HINDI = ("राष्ट्रीय सुरक्षा परिषद ने आज दिल्ली में बैठक की। परिषद के सदस्यों ने सीमा की स्थिति पर चर्चा की। "
         "मंत्री ने कहा कि परिषद जल्द ही नई नीति की घोषणा करेगी। विशेषज्ञों ने सुझाव दिया कि किसानों और "
         "शिक्षकों के लिए योजनाएँ बनाई जाएँ। परिषद की अगली बैठक अगले महीने मुंबई में होगी।")


def prose_page(title: str, paragraphs: list[str], lang: str = "en") -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!doctype html><html lang={lang}><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{body}</article></body></html>").encode()


class Server:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.lock, self.hits, self.stopping = threading.Lock(), [], threading.Event()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.routes: dict = {}
        self.feeds: dict[str, str] = {}
        self.honest: dict[str, str] = {}   # URL -> title of every article that must come through
        self._seed = iter(range(7000, 8000))
        self._build()

    def static(self, path: str, body: bytes, ctype: str, headers: dict | None = None) -> str:
        self.routes[path] = lambda h: h._send(200, body, ctype, headers)
        return self.base + path

    def good_page(self, path: str, title: str) -> str:
        url = self.static(path, article_page(title, next(self._seed)), "text/html; charset=utf-8")
        self.honest[url] = title
        return url

    def feed(self, name: str, body: bytes, ctype: str = XML, headers: dict | None = None) -> None:
        self.feeds[name] = self.static(f"/feeds/{name}", body, ctype, headers)

    def _build(self) -> None:
        b = self.base
        # Two honest feeds.
        for name in ("alpha", "beta"):
            url = self.good_page(f"/articles/{name}.html", f"Honest {name} story")
            self.feed(f"{name}.xml", rss(name, [{"title": f"Honest {name} story", "link": url, "guid": url,
                                                 "pubDate": "Mon, 01 Jan 2024 10:00:00 GMT"}]).encode())

        # NUL, controls and spoofing characters in an RSS title and author (&#0; and raw).
        url = self.good_page("/articles/nul.html", "Harbor council story")
        self.feed("nul.xml", (rss("Nul&#0; feed", [{
            "title": "Harbor&#0; coun\x00cil \u202estory\u202c\u200b\ufeff", "link": url, "guid": url,
            "author": "ed@n.example (Ed&#0;itor\u200f)", "pubDate": "Mon, 01 Jan 2024 11:00:00 GMT"}])).encode())

        # A JSON Feed: \u0000 in strings, a "url" that is a number, beside an honest item.
        url = self.good_page("/articles/json-good.html", "JSON feed story")
        self.feed("nul.json", json.dumps({
            "version": "https://jsonfeed.org/version/1.1", "title": "J\u0000son",
            "items": [{"id": "1", "url": url, "title": "JSON\u0000 feed story", "content_text": "x"},
                      {"id": "43", "url": 43, "title": "Numeric url", "content_text": "y"}]}).encode(),
            "application/feed+json")

        # A page that is one 5 MB token, from a thin entry (-> DLQ) and a rich one (-> the feed).
        token = b"<!doctype html><html><body><p>" + b"x" * (5 * 2**20) + b"</p></body></html>"
        self.static("/pages/token.html", token, "text/html; charset=utf-8")
        self.static("/pages/token-rich.html", token, "text/html; charset=utf-8")
        # A redirect to a malformed Location (urljoin: "Invalid IPv6 URL").
        for kind in ("", "-rich"):
            self.routes[f"/pages/bad-redirect{kind}.html"] = (
                lambda h: h._send(302, b"", "text/plain", {"Location": "http://[::1"}))
        rich_text = " ".join(article_text(7777, 2))
        items = []
        for name in ("token", "bad-redirect"):
            for kind in ("", "-rich"):
                link = f"{b}/pages/{name}{kind}.html"
                it = {"title": f"Hostile {name}{kind}", "link": link, "guid": link,
                      "pubDate": "Tue, 02 Jan 2024 10:00:00 GMT", "description": "Too short."}
                if kind:
                    it["content:encoded"] = f"<![CDATA[<p>{rich_text}</p>]]>"
                items.append(it)
        self.feed("pages.xml", rss("Hostile pages", items).replace(
            "<rss ", '<rss xmlns:content="http://purl.org/rss/1.0/modules/content/" ').encode())

        # A long honest article: its text is cut to the budget at a paragraph boundary.
        long_url = b + "/articles/long.html"
        self.long_paragraphs = article_text(4242, 1500)  # ~600 KB of prose
        self.static("/articles/long.html", prose_page("A very long report", self.long_paragraphs),
                    "text/html; charset=utf-8")
        self.long_url = long_url
        # 10,000 enclosures on one entry.
        url = self.good_page("/articles/enclosures.html", "Podcast story")
        encl = "".join(f'<enclosure url="{b}/media/{i}.mp3" length="{i}" type="audio/mpeg"/>' for i in range(10_000))
        doc = rss("Enclosures", [{"title": "Podcast story", "link": url, "guid": url,
                                  "pubDate": "Wed, 03 Jan 2024 10:00:00 GMT"}])
        self.feed("enclosures.xml", doc.replace("<guid>", encl + "<guid>", 1).encode())
        self.feed("long.xml", rss("Long", [{"title": "A very long report", "link": long_url, "guid": long_url,
                                            "pubDate": "Wed, 03 Jan 2024 11:00:00 GMT"}]).encode())

        # 20,000 items (~2 MB): PER_POLL newest emitted now, the rest left for later polls.
        items = [{"title": f"Item {i}", "link": f"{b}/big/{i}.html", "guid": f"{b}/big/{i}.html",
                  "pubDate": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(1_600_000_000 + i * 60))}
                 for i in range(20_000)]
        random.Random(5).shuffle(items)
        self.feed("big.xml", rss("Big", items).encode())
        self.big_newest = {f"{b}/big/{i}.html" for i in range(20_000 - PER_POLL, 20_000)}

        # A truncated gzip feed.
        whole = gzip.compress(rss("Gz", [{"title": "Gz story", "link": f"{b}/gz/1.html", "guid": "gz1",
                                          "pubDate": "Mon, 01 Jan 2024 10:00:00 GMT"}] * 50).encode())
        self.feed("truncated-gzip.xml", whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"})

        # An honest Hindi article: keywords must be whole words.
        hindi = self.static("/articles/hindi.html", prose_page("परिषद की बैठक", [HINDI] * 6, "hi"),
                            "text/html; charset=utf-8")
        self.feed("hindi.xml", rss("Hindi", [{"title": "परिषद की बैठक", "link": hindi, "guid": hindi,
                                              "pubDate": "Mon, 01 Jan 2024 09:00:00 GMT"}]).encode())
        self.hindi_url = hindi

    def __enter__(self) -> "Server":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Run:
    def __init__(self, ran: Ran, server: Server, settings, messages, statuses):
        self.ran, self.server, self.settings = ran, server, settings
        self.messages, self.statuses = messages, statuses

    def values(self, topic: str) -> list[dict]:
        return [models.decode(m.value) for m in self.messages[topic]]

    def by_url(self, topic: str) -> dict[str, dict]:
        return {v["url"]: v for v in self.values(topic)}

    def dead(self, topic: str) -> dict[str, dict[str, str]]:
        return {models.decode(m.value)["url"]: {k: v.decode("utf-8", "replace") for k, v in m.headers}
                for m in self.messages[topics.dlq(topic)]}

    def status(self, name: str) -> dict:
        return self.statuses[self.server.feeds[name]]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("bounds")
    with Server() as server:
        cfg = tmp / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "local", "local": {"path": str(tmp / "bus.sqlite3")}},
            "state_dir": str(tmp / "state"),
            "feeds": [{"url": u} for u in server.feeds.values()],
            "fetch": {"allowed_networks": ["127.0.0.1/32"], "deadline": 20.0, "read_timeout": 10.0},
            "runner": {"idle_after": 1.0, "max_retries": 1, "retry_backoff_initial": 0.1,
                       "retry_backoff_max": 0.2, "max_message_bytes": BUDGET},
            "poll": {"max_entries_per_poll": PER_POLL},
        })
        ran = pipeline_cmd("run", "--config", str(cfg), "--until-idle", tmp=tmp, timeout=RUN_LIMIT + 200,
                           memory=RUN_MEMORY * 3)
        status = pipeline_cmd("feeds", "status", "--json", "--config", str(cfg), tmp=tmp, timeout=60)
        statuses = {row["url"]: row for row in map(json.loads, status.proc.stdout.splitlines())}
        messages = {t: read_topic(settings, t) for t in TOPICS}
    return Run(ran, server, settings, messages, statuses)


# --- the run as a whole: bounded, and the honest items come through ------------------------------

def test_run_is_bounded_in_time_and_memory(run: Run):
    print(f"\nrun: {run.ran.elapsed:.1f}s, peak RSS {run.ran.peak / 2**20:.0f} MiB, rc {run.ran.proc.returncode}; "
          + ", ".join(f"{t} max {max((len(m.value) for m in run.messages[t]), default=0)} B"
                      for t in TOPICS if run.messages[t]))
    assert run.ran.proc.returncode == 0, run.ran.proc.stderr[-3000:]
    assert run.ran.elapsed < RUN_LIMIT, f"{run.ran.elapsed:.0f}s"
    assert 0 < run.ran.peak < RUN_MEMORY, f"peak RSS {run.ran.peak / 2**20:.0f} MiB"
    assert "Traceback" not in run.ran.proc.stderr, run.ran.proc.stderr[-3000:]


def test_honest_articles_reach_enriched(run: Run):
    enriched = run.by_url(topics.ARTICLES_ENRICHED)
    for url in run.server.honest:
        assert url in enriched, url
        assert enriched[url]["text_source"] == "page"


def test_every_value_fits_the_budget(run: Run):
    for topic in TOPICS:
        sizes = [len(m.value) for m in run.messages[topic]]
        assert max(sizes, default=0) <= BUDGET, (topic, max(sizes))


# --- NUL and invisible characters ---------------------------------------------------------------------

def test_no_nul_or_control_reaches_any_topic(run: Run):
    for topic in TOPICS:
        for m in run.messages[topic]:
            assert b"\\u0000" not in m.value and b"\\u001b" not in m.value, topic
            assert "\u202e".encode() not in m.value and "\ufeff".encode() not in m.value, topic


def test_rss_title_and_author_are_cleaned(run: Run):
    value = run.by_url(topics.ARTICLES_ENRICHED)[f"{run.server.base}/articles/nul.html"]
    entry = run.by_url(topics.FEED_ENTRIES)[f"{run.server.base}/articles/nul.html"]
    assert entry["title"] == "Harbor council story"
    assert entry["authors"] == ["Editor"]
    assert entry["feed_title"] == "Nul feed"
    assert value["feed_title"] == "Nul feed"


def test_json_feed_nul_is_cleaned_and_a_numeric_url_is_refused(run: Run):
    entries = run.by_url(topics.FEED_ENTRIES)
    good = entries[f"{run.server.base}/articles/json-good.html"]
    assert (good["title"], good["feed_title"]) == ("JSON feed story", "Json")
    assert not any(u.endswith("/43") for u in entries), sorted(entries)
    assert "url is a number, not a string" in (run.status("nul.json")["warning"] or "")


# --- bounded messages ---------------------------------------------------------------------------------

def test_a_5mb_token_page_is_not_an_article(run: Run):
    b = run.server.base
    dead = run.dead(topics.FEED_ENTRIES)
    headers = dead[f"{b}/pages/token.html"]
    assert "not text" in headers[H + "exception.message"], headers[H + "exception.message"]
    rich = run.by_url(topics.ARTICLES_EXTRACTED)[f"{b}/pages/token-rich.html"]
    assert rich["text_source"] == "feed" and "not text" in rich["fallback_reason"]
    assert "xxxxxxxxxx" not in rich["text"]


def test_a_long_article_is_cut_at_a_paragraph_with_its_length_recorded(run: Run):
    value = run.by_url(topics.ARTICLES_ENRICHED)[run.server.long_url]
    whole = "\n\n".join(run.server.long_paragraphs)
    assert value["truncated"] is True
    assert value["original_length"]["text"] == len(whole)
    assert whole.startswith(value["text"]) and whole[len(value["text"]):].startswith("\n\n")
    assert len(value["text"]) > BUDGET // 4


def test_enclosures_are_capped(run: Run):
    entry = run.by_url(topics.FEED_ENTRIES)[f"{run.server.base}/articles/enclosures.html"]
    assert 0 < len(entry["enclosures"]) <= 50


def test_a_huge_feed_emits_its_newest_entries_and_keeps_the_rest_for_later(run: Run):
    big = {u for u in run.by_url(topics.FEED_ENTRIES) if "/big/" in u}
    assert big == run.server.big_newest
    row = run.status("big.xml")
    assert "left for the next poll" in row["last_result"], row


# --- clear errors -------------------------------------------------------------------------------------

def test_malformed_redirect_is_a_typed_fetch_error_with_the_page_url(run: Run):
    b = run.server.base
    headers = run.dead(topics.FEED_ENTRIES)[f"{b}/pages/bad-redirect.html"]
    # Dead-lettered as bad input for good (extract's PageRejected is a StageError), not a bare ValueError.
    assert headers[H + "exception.class.name"] in ("pipeline.errors.StageError", "pipeline.stages.extract.PageRejected")
    assert f"{b}/pages/bad-redirect.html" in headers[H + "exception.message"]
    assert "InvalidURL" in headers[H + "exception.message"]
    rich = run.by_url(topics.ARTICLES_EXTRACTED)[f"{b}/pages/bad-redirect-rich.html"]
    assert rich["text_source"] == "feed"
    assert rich["fetch_error"].startswith("InvalidURL: fetcher: bad redirect")


def test_a_truncated_gzip_feed_is_an_error_with_backoff(run: Run):
    row = run.status("truncated-gzip.xml")
    assert row["state"] == "error", row
    assert "truncated gzip" in row["last_error"]
    assert row["error_count"] == 1


def test_hindi_keywords_are_whole_words(run: Run):
    value = run.by_url(topics.ARTICLES_ENRICHED)[run.server.hindi_url]
    words = {w for k in value["keywords"] for w in k.split()}
    assert "परिषद" in words, value["keywords"]
    assert not any(unicodedata.category(w[0]).startswith("M") for w in words), value["keywords"]


# --- config and OPML loading: bounded, with a clear error -----------------------------------------------

def _alias_bomb(where: str) -> str:
    if where == "top":
        lines = ["t0: &t0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"t{i}: &t{i} [" + ", ".join([f"*t{i - 1}"] * 9) + "]" for i in range(1, 10)]
        return "\n".join(lines) + "\n"
    out = ["feeds:", "  - url: https://ok.example/0.xml", "    tags: &t0 [a, b, c, d, e, f, g, h, i]"]
    for i in range(1, 10):
        out += [f"  - url: https://ok.example/{i}.xml", f"    tags: &t{i} [" + ", ".join([f"*t{i - 1}"] * 9) + "]"]
    return "\n".join(out) + "\n"


CONFIG_CASES = {
    # name: (config text, environment, what the error must say)
    "alias-bomb-top-level": (_alias_bomb("top"), {}, "alias bomb"),
    "alias-bomb-in-feed-tags": (_alias_bomb("tags"), {}, "alias bomb"),
    "deadline-inf": ("", {"PIPELINE__FETCH__DEADLINE": ".inf"}, "fetch.deadline: Input should be a finite number"),
    "deadline-nan": ("", {"PIPELINE__FETCH__DEADLINE": ".nan"}, "fetch.deadline: Input should be a finite number"),
}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_hostile_config_is_refused_quickly_with_a_clear_error(tmp_path, name):
    text, env, expected = CONFIG_CASES[name]
    cfg = tmp_path / "hostile.yaml"
    cfg.write_text(text)
    ran = pipeline_cmd("check-config", str(cfg), tmp=tmp_path, timeout=CHECK_LIMIT + 30, env=env,
                       memory=CHECK_MEMORY)
    out = ran.proc.stdout + ran.proc.stderr
    print(f"\n{name}: rc {ran.proc.returncode}, {ran.elapsed:.1f}s, peak {ran.peak / 2**20:.0f} MiB: {out[-300:]!r}")
    assert ran.proc.returncode == 1, out[-2000:]
    assert expected in out, out[-2000:]
    assert "line" in out or env
    assert ran.elapsed < CHECK_LIMIT and 0 < ran.peak < CHECK_MEMORY, (ran.elapsed, ran.peak)


def test_opml_entity_bomb_in_utf16_is_refused(tmp_path):
    ents = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    doc = (f'<?xml version="1.0" encoding="utf-16"?><!DOCTYPE opml [{ents}]><opml version="2.0"><body>'
           '<outline text="&i;" xmlUrl="https://ok.example/feed.xml"/></body></opml>')
    opml = tmp_path / "bomb.opml"
    opml.write_bytes(doc.encode("utf-16"))
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\n")
    ran = pipeline_cmd("feeds", "import", str(opml), "--config", str(cfg), tmp=tmp_path,
                       timeout=CHECK_LIMIT + 30, memory=CHECK_MEMORY)
    out = ran.proc.stdout + ran.proc.stderr
    print(f"\nopml: rc {ran.proc.returncode}, {ran.elapsed:.1f}s, peak {ran.peak / 2**20:.0f} MiB: {out[-300:]!r}")
    assert ran.proc.returncode == 1, out[-2000:]
    assert "DOCTYPE declarations are not accepted" in out, out[-2000:]
    assert ran.elapsed < CHECK_LIMIT and 0 < ran.peak < CHECK_MEMORY, (ran.elapsed, ran.peak)


# --- on a real broker: a value over Kafka's 1 MB is cut to fit, not a batch that can never be produced ----

@pytest.mark.kafka
@pytest.mark.timeout(400)
def test_an_oversized_article_is_cut_and_produced_on_kafka(kafka_bootstrap, tmp_path):
    from pipeline.bus import open_bus
    from integration.workers import terminate, wait_for

    with Server() as server:
        # ~1.8 MB of prose: text plus blocks make a ~3.6 MB articles.extracted value.  (Before the
        # budget it was produced: compressed, it passed the broker's 1 MB limit; a consumer or a
        # less compressible text meets the limit instead.)
        paragraphs = article_text(99, 4000)
        server.static("/articles/huge.html", prose_page("A huge report", paragraphs), "text/html; charset=utf-8")
        honest = server.good_page("/articles/kafka-honest.html", "An honest story")
        huge = server.base + "/articles/huge.html"
        prefix = f"bounds{random.getrandbits(32):08x}."
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "kafka", "topic_prefix": prefix,
                          "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id_prefix": prefix,
                                    "partitions": 1}},
            "state_dir": str(tmp_path / "state"),
            "fetch": {"allowed_networks": ["127.0.0.1/32"], "deadline": 30.0, "read_timeout": 10.0},
            "runner": {"poll_timeout": 0.2, "max_retries": 1, "retry_backoff_initial": 0.1, "retry_backoff_max": 0.5},
        })
        producer = open_bus(settings, client_id="bounds-producer")
        try:
            producer.ensure_topics([settings.topic(t) for t in (
                topics.FEED_ENTRIES, topics.dlq(topics.FEED_ENTRIES), topics.ARTICLES_EXTRACTED)])
            producer.begin()
            for url in (huge, honest):
                entry = {"id": url.rsplit("/", 1)[-1], "url": url, "feed_url": server.base + "/feed.xml",
                         "title": "t"}
                producer.produce(settings.topic(topics.FEED_ENTRIES), entry["id"].encode(), models.encode(entry), [])
            producer.commit({})
        finally:
            producer.close()

        log = tmp_path / "worker.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
        worker = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "extract", "--config", str(cfg)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
        try:
            out = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(
                read_topic(settings, topics.ARTICLES_EXTRACTED, settle=0.3)),
                timeout=180, every=2.0, what=f"both articles on articles.extracted (log: {log})")
        finally:
            code = terminate(worker)
    assert code == 0, log.read_text()[-3000:]
    values = {models.decode(m.value)["url"]: (len(m.value), models.decode(m.value)) for m in out}
    size, value = values[huge]
    assert size <= 1_000_000
    assert value["truncated"] is True and value["original_length"]["text"] == len("\n\n".join(paragraphs))
    assert "\n\n".join(paragraphs).startswith(value["text"])
    assert values[honest][1]["text_source"] == "page" and "truncated" not in values[honest][1]
