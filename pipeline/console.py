"""The operator console: a small web UI over the pipeline's topics, feeds and dead letters.

``pipeline console --config FILE`` serves it on 127.0.0.1 (``--host`` to change that). Pages
are rendered on the server as plain HTML with inline CSS: no JavaScript, no CDN, works
offline. It reads the same things the CLI reads (topics through the bus, feeds through the
poll state), so it works on either transport.

Read-only by default. Actions (re-drive dead letters, refresh, disable or enable a feed) need the
console started with a token (``--token-file`` or ``PIPELINE_CONSOLE_TOKEN``): the operator
signs in with it once, which sets an HttpOnly, SameSite=Strict session cookie, and every
action form carries a CSRF token bound to that session; a POST whose Origin is another site
is refused as well.
"""

from __future__ import annotations

import hmac
import html
import logging
import math
import os
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlsplit

from pipeline import stages, topics
from pipeline.dedupe.view import StoryView
from pipeline.errors import PipelineError

log = logging.getLogger("pipeline.console")

SESSION_COOKIE = "pipeline_console"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# --- what the pages show -------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()


def _quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


@dataclass
class _Snapshot:
    """What one bus session read for the overview (see ``ConsoleData._read``)."""

    at: float  # time.monotonic() of the read
    report: dict[str, dict[str, Any]]  # ``describe_topics`` row per topic (logical name)
    newest: dict[str, list]  # physical first output topic -> its newest messages (per partition)
    waiting: dict[str, int]  # stage -> dead letters not re-driven yet
    rates: dict[str, float | None] = field(default_factory=dict)  # stage -> committed/s, last minute


class ConsoleData:
    """Reads what the pages show. One bus session per read: the console is idle most of the
    time and must not hold a consumer (or a lock on the local log) between page views.

    The overview's topics (offsets, lag, the newest messages of each output topic, the dead
    letters) are read in one session and kept ``cache_seconds``, so a reload, or a few people
    looking, read them once; a re-drive through the console reads them again."""

    #: Messages per partition of each stage's output topic that freshness is measured on.
    sample = 200

    def __init__(self, settings, cache_seconds: float = 3.0) -> None:
        self.settings = settings
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()  # one bus session at a time
        self._samples: list[tuple[float, dict[str, int]]] = []  # (time, committed per stage)
        self._snapshot: _Snapshot | None = None

    def view(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """``(overview(), freshness())`` from one read of the topics."""
        snap = self._read()
        return self._overview(snap), self._freshness(snap)

    def overview(self) -> list[dict[str, Any]]:
        """One row per stage: input topic, processed, lag, outputs, dead letters, throughput
        (messages/s over the last minute of page views and samples), errors (from the worker's
        /metrics when its port is configured and answers)."""
        return self._overview(self._read())

    def _overview(self, snap: _Snapshot) -> list[dict[str, Any]]:
        rows = []
        errors = self._worker_errors()
        for name in stages.NAMES:
            cls = stages.load(name)
            inp = snap.report.get(cls.input_topic) if cls.input_topic else None
            group = self._group(snap, name)
            done = sum((p["committed"] or 0) for p in group["partitions"]) if group else 0
            # Dead letters still waiting: the DLQ's offsets would also count re-drive markers
            # (and, on Kafka, transaction markers).
            waiting = snap.waiting.get(name, 0) if cls.input_topic in snap.report else 0
            outs = {t: snap.report[t]["messages"] for t in cls.output_topics if t in snap.report}
            rows.append({"stage": name, "input": cls.input_topic or "feeds", "processed": done if inp else None,
                         "lag": group["lag"] if group else None, "outputs": outs,
                         "dlq": waiting, "errors": errors.get(name), "rate": snap.rates.get(name)})
        return rows

    def freshness(self) -> dict[str, dict[str, Any]]:
        """Per stage, how fresh what it writes is, from the newest ``sample`` messages of each
        partition of its first output topic: the time from the entry's poll (``polled_at``)
        to the message being written, p50 and p95 in seconds; for enrich also from the
        article's ``published``; and the age of the newest message.  Read from the topics, so
        it works on either transport without Prometheus."""
        return self._freshness(self._read())

    def _freshness(self, snap: _Snapshot) -> dict[str, dict[str, Any]]:
        from pipeline import models

        out: dict[str, dict[str, Any]] = {}
        for topic, name in self._first_outputs().items():
            if topic not in snap.newest:
                continue
            polled, published, newest = [], [], 0
            for m in snap.newest[topic]:
                newest = max(newest, m.timestamp_ms)
                try:
                    v = models.decode(m.value)
                except PipelineError:
                    continue
                if not isinstance(v, dict):
                    continue
                for field_name, into in (("polled_at", polled), ("published", published)):
                    at = _epoch(v.get(field_name))
                    if at is not None and m.timestamp_ms:
                        into.append(max(0.0, m.timestamp_ms / 1000 - at))
            out[name] = {"polled_p50": _quantile(polled, 0.5), "polled_p95": _quantile(polled, 0.95),
                         "published_p50": _quantile(published, 0.5) if name == "enrich" else None,
                         "newest_age": time.time() - newest / 1000 if newest else None,
                         "sample": len(polled)}
        return out

    def _read(self) -> _Snapshot:
        """The overview's snapshot: the one read within ``cache_seconds``, else a new one."""
        with self._lock:
            snap = self._snapshot
            if snap is None or time.monotonic() - snap.at >= self.cache_seconds:
                snap = self._snapshot = self._read_topics()
                committed = {}
                for name in stages.NAMES:
                    group = self._group(snap, name)
                    committed[name] = sum((p["committed"] or 0) for p in group["partitions"]) if group else 0
                self._samples = [(t, c) for t, c in self._samples if snap.at - t <= 60] + [(snap.at, committed)]
                first_t, first = self._samples[0]
                dt = snap.at - first_t
                for name in stages.NAMES:
                    # The poller reads no topic: its throughput shows as what it wrote (feed.entries).
                    cls = stages.load(name)
                    ok = dt >= 1 and cls.input_topic is not None and cls.input_topic in snap.report
                    snap.rates[name] = round((committed[name] - first.get(name, 0)) / dt, 2) if ok else None
            return snap

    def _read_topics(self) -> _Snapshot:
        """One bus session, one assignment (a Kafka session takes one) of every stage topic that
        exists: offsets and group lags of all, then a read of the newest ``sample`` messages per
        partition of each first output topic and of the whole of each dead-letter topic."""
        from pipeline.bus import open_bus
        from pipeline.cli import _drain
        from pipeline.commands.ops import describe_assigned, pending_letters

        settings = self.settings
        names = list(dict.fromkeys(t for n in stages.NAMES for t in self._stage_topics(n)))
        outputs = self._first_outputs()
        dlqs = {settings.topic(topics.dlq(stages.load(n).input_topic)): n
                for n in stages.NAMES if stages.load(n).input_topic}
        report: dict[str, dict[str, Any]] = {}
        read: dict[str, list] = {}
        bus = open_bus(settings, client_id="pipeline-console")
        try:
            existing = bus.list_topics()
            present = [n for n in names if settings.topic(n) in existing]
            if present:
                bus.assign([settings.topic(n) for n in present], from_beginning=True)
                ends, starts = bus.end_offsets(), bus.positions()
                report = {t["topic"]: t for t in describe_assigned(settings, bus, present, ends, starts)}
                read = {t: [] for t in {settings.topic(n) for n in present} if t in outputs or t in dlqs}
                for tp, end in ends.items():
                    start = starts.get(tp, 0)
                    if tp[0] in outputs:
                        to = max(start, end - self.sample)
                    elif tp[0] in dlqs:
                        to = start
                    else:
                        to = end  # not shown (articles.duplicates): nothing to read
                    if to != start:
                        bus.hold(tp, to)
                        bus.release(tp)
                _drain(bus, ends, lambda m: read[m.topic].append(m) if m.topic in read else None)
        finally:
            bus.close()
        waiting = {stage: len(pending_letters(dlq, read[dlq], limit=10_000)) for dlq, stage in dlqs.items()
                   if dlq in read}
        return _Snapshot(at=time.monotonic(), report=report,
                         newest={t: msgs for t, msgs in read.items() if t in outputs}, waiting=waiting)

    def _first_outputs(self) -> dict[str, str]:
        """The physical first output topic of each stage that writes one -> the stage."""
        out: dict[str, str] = {}
        for name in stages.NAMES:
            cls = stages.load(name)
            if cls.output_topics:
                out[self.settings.topic(cls.output_topics[0])] = name
        return out

    @staticmethod
    def _group(snap: _Snapshot, stage: str) -> dict[str, Any] | None:
        """The ``describe_topics`` group row of ``stage`` on its input topic, if any."""
        inp = stages.load(stage).input_topic
        return next((g for g in snap.report.get(inp, {}).get("groups", []) if g["stage"] == stage), None) \
            if inp else None

    @staticmethod
    def _stage_topics(name: str) -> list[str]:
        cls = stages.load(name)
        out = list(cls.output_topics)
        if cls.input_topic:
            out = [cls.input_topic, topics.dlq(cls.input_topic)] + out
        return out

    def _worker_errors(self) -> dict[str, float]:
        """pipeline_errors_total per stage, summed over the workers whose metrics port is known."""
        obs = self.settings.observe
        ports = {p for s in stages.NAMES if (p := obs.port_for(s))}
        out: dict[str, float] = {}
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    text = r.read().decode("utf-8", "replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("pipeline_errors_total{"):
                    labels, _, value = line.rpartition(" ")
                    stage = labels.split('stage="', 1)[1].split('"', 1)[0] if 'stage="' in labels else "?"
                    out[stage] = out.get(stage, 0.0) + float(value)
        return out

    def feeds(self) -> list[dict[str, Any]]:
        from pipeline.commands.feeds import feed_statuses

        return feed_statuses(self.settings)

    def dead_letters(self, stage: str, limit: int = 200) -> list[dict[str, Any]]:
        from pipeline.commands.ops import dead_letters

        if stages.load(stage).input_topic is None:
            return []
        with self._lock:
            return dead_letters(self.settings, stage, limit=limit)

    def stories(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest stories on articles.enriched, each with its duplicates (from
        articles.duplicates, by cluster) and the boilerplate removed from it."""
        from pipeline import models
        from pipeline.bus import open_bus
        from pipeline.cli import _drain

        with self._lock:
            bus = open_bus(self.settings, client_id="pipeline-console")
            try:
                existing = bus.list_topics()
                wanted = {self.settings.topic(t): t for t in (topics.ARTICLES_ENRICHED, topics.ARTICLES_DUPLICATES)}
                found: dict[str, list] = {t: [] for t in wanted.values()}
                present = [p for p in wanted if p in existing]
                if present:
                    # One assignment for both: a Kafka session has one consumer.
                    bus.assign(present, from_beginning=True)
                    _drain(bus, bus.end_offsets(), lambda m: found[wanted[m.topic]].append(m))
            finally:
                bus.close()

        def value(m):
            try:
                return models.decode(m.value)
            except PipelineError:
                return None

        # What an upserting consumer of articles.enriched holds (docs/dedupe.md): an update
        # replaces its story and moves it to the top; a copy its original superseded is
        # shown among the original's duplicates.
        view = StoryView().extend((value(m) for m in found[topics.ARTICLES_ENRICHED]),
                                  (value(m) for m in found[topics.ARTICLES_DUPLICATES]))
        return [{**s.value, "duplicates": s.duplicates} for s in view.stories(limit)]

    def inspect(self, url: str) -> dict[str, Any]:
        from pipeline.commands.inspect import Inspector

        inspector = Inspector(self.settings)
        try:
            return inspector.inspect(url)
        finally:
            inspector.close()

    # --- actions ---

    def redrive(self, stage: str, partition: int | None, offset: int | None) -> str:
        from pipeline.commands.ops import redrive

        only = {(partition, offset)} if partition is not None and offset is not None else None
        with self._lock:
            result = redrive(self.settings, stage, only=only)
            self._snapshot = None  # the overview's dead-letter counts moved
        return (f"re-drove {len(result['moved'])} dead letter(s) of {stage} onto {result.get('to', '?')}"
                + (f" ({result['already']} already re-driven)" if result["already"] else ""))

    def feed_action(self, action: str, url: str) -> str:
        from pipeline.commands import feeds as feeds_cmd

        if action == "refresh":
            feeds_cmd.send_refresh(self.settings, [url])
            return f"asked the poller to poll {url} now"
        if action == "enable":
            state = feeds_cmd._open_state(self.settings)
            try:
                ok = state.enable(url)
            finally:
                state.close()
            if not ok:
                raise PipelineError(f"console: no feed {url} in the poll state yet")
            feeds_cmd.send_refresh(self.settings, [url])  # a running poller polls it at once
            return f"enabled {url}"
        if action == "disable":
            state = feeds_cmd._open_state(self.settings)
            try:
                ok = state.disable(url, "disabled by an operator (console)")
            finally:
                state.close()
            if not ok:
                raise PipelineError(f"console: no feed {url} in the poll state yet")
            return f"disabled {url}; enable it to poll it again"
        raise PipelineError(f"console: unknown feed action {action!r}")


# --- pages ---------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header b{margin-right:1em}
main{padding:1em 1.2em}table{border-collapse:collapse;background:#fff;width:100%;margin:.5em 0 1.5em}
th,td{border:1px solid #dde1e8;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.msg{background:#e6f4ea;border:1px solid #9bd3ae;padding:.5em;margin-bottom:1em}
.err{background:#fdecea;border:1px solid #f0a8a0;padding:.5em;margin-bottom:1em}
pre{white-space:pre-wrap;word-break:break-word;max-height:14em;overflow:auto;margin:0;font-size:12px}
form.inline{display:inline}button{cursor:pointer}.muted{color:#6b7485}
.story{background:#fff;border:1px solid #dde1e8;padding:.6em .8em;margin-bottom:1em}
"""


def _page(title: str, body: str, *, msg: str = "", err: str = "", signed_in: bool, can_act: bool) -> bytes:
    nav = "".join(f'<a href="{href}">{esc(label)}</a>' for href, label in
                  (("/", "Overview"), ("/feeds", "Feeds"), ("/dlq", "Dead letters"),
                   ("/stories", "Stories"), ("/inspect", "Inspect")))
    who = ("signed in" if signed_in else '<a href="/login">sign in</a>') if can_act else \
        '<span class="muted">read-only</span>'
    notes = (f'<div class="msg" id="msg">{esc(msg)}</div>' if msg else "") + \
            (f'<div class="err" id="err">{esc(err)}</div>' if err else "")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)} · pipeline</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>'
            f'<body><header><b>pipeline console</b>{nav}<span style="margin-left:auto">{who}</span></header>'
            f'<main><h1>{esc(title)}</h1>{notes}{body}</main></body></html>').encode("utf-8")


def _table(head: list[str], rows: list[list[str]], table_id: str) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def _td(v: Any, numeric: bool = False) -> str:
    return f'<td class="n">{esc(v)}</td>' if numeric else f"<td>{esc(v)}</td>"


class Console:
    """The web app: routes requests to pages and actions. Independent of the HTTP server so
    it can be driven directly in tests."""

    def __init__(self, settings, token: str | None = None, data: ConsoleData | None = None) -> None:
        self.data = data or ConsoleData(settings)
        self.token = token
        self._sessions: dict[str, str] = {}  # session id -> CSRF token
        self._secret = secrets.token_bytes(32)

    # --- auth ---

    def session(self, cookie_header: str | None) -> str | None:
        for part in (cookie_header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value in self._sessions:
                return value
        return None

    def login(self, token: str) -> str | None:
        """A new session id when ``token`` is the console's token, else None."""
        if not self.token or not hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = hmac.new(self._secret, sid.encode(), "sha256").hexdigest()
        return sid

    def csrf_ok(self, sid: str | None, form_token: str) -> bool:
        return bool(sid) and hmac.compare_digest(self._sessions.get(sid, ""), form_token or "-")

    def _action_form(self, sid: str | None, action: str, fields: dict[str, Any], label: str, form_id: str) -> str:
        if not self.token:
            return '<span class="muted">read-only</span>'
        if sid is None:
            return '<a href="/login">sign in to act</a>'
        hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())
        return (f'<form class="inline" method="post" action="{esc(action)}" id="{esc(form_id)}">{hidden}'
                f'<input type="hidden" name="csrf" value="{esc(self._sessions[sid])}">'
                f'<button type="submit">{esc(label)}</button></form>')

    # --- pages ---

    def render(self, path: str, query: dict[str, list[str]], sid: str | None) -> tuple[int, bytes]:
        """``(status, html)`` of a GET page."""
        q = {k: v[0] for k, v in query.items() if v}
        msg, err = q.get("msg", ""), q.get("err", "")
        kw = {"msg": msg, "err": err, "signed_in": sid is not None, "can_act": bool(self.token)}
        try:
            if path == "/":
                return 200, _page("Overview", self._overview(), **kw)
            if path == "/feeds":
                return 200, _page("Feeds", self._feeds(sid), **kw)
            if path == "/dlq":
                return 200, _page("Dead letters", self._dlq(q.get("stage", "extract"), sid), **kw)
            if path == "/stories":
                return 200, _page("Stories", self._stories(), **kw)
            if path == "/inspect":
                return 200, _page("Inspect", self._inspect(q.get("url", "")), **kw)
            if path == "/login":
                return 200, _page("Sign in", self._login_form(), **kw)
        except PipelineError as exc:
            return 503, _page("Unavailable", "", **{**kw, "err": str(exc)})
        return 404, _page("Not found", f"<p>No page {esc(path)}.</p>", **kw)

    def _overview(self) -> str:
        rows = []
        overview, fresh = self.data.view()
        for r in overview:
            f = fresh.get(r["stage"], {})
            outs = ", ".join(f"{t}: {n}" for t, n in r["outputs"].items()) or "-"
            rows.append([_td(r["stage"]), _td(r["input"]), _td("-" if r["processed"] is None else r["processed"], True),
                         _td("-" if r["rate"] is None else r["rate"], True),
                         _td("-" if r["lag"] is None else r["lag"], True), _td(outs),
                         f'<td class="n"><a href="/dlq?stage={esc(r["stage"])}">{esc(r["dlq"])}</a></td>'
                         if r["input"] != "feeds" else _td(r["dlq"], True),
                         _td("-" if r["errors"] is None else int(r["errors"]), True),
                         _td(f"{_seconds(f.get('polled_p50'))} / {_seconds(f.get('polled_p95'))}", True),
                         _td(_seconds(f.get("newest_age")), True)])
        enrich = fresh.get("enrich", {})
        return (_table(["stage", "reads", "processed", "msg/s (last min)", "lag", "written", "dead letters",
                        "errors", "polled → written p50 / p95", "last written"], rows, "stages")
                + f'<p id="freshness">Freshness of articles.enriched: {_seconds(enrich.get("polled_p50"))} '
                  f'from poll (p95 {_seconds(enrich.get("polled_p95"))}), '
                  f'{_seconds(enrich.get("published_p50"))} from publication (p50), over the latest '
                  f'{enrich.get("sample", 0)} articles.</p>'
                + '<p class="muted">msg/s compares page views and samples of the last minute; errors come '
                  "from each worker's /metrics when observe.metrics_ports names its port; freshness is read "
                  "from the newest 200 messages of each partition of the stage's output topic.</p>")

    def _feeds(self, sid: str | None) -> str:
        rows = []
        for i, f in enumerate(self.data.feeds()):
            actions = self._action_form(sid, "/actions/feed", {"action": "refresh", "url": f["url"]}, "Refresh",
                                        f"refresh-{i}")
            flip = "enable" if f["state"] == "disabled" else "disable"
            actions += " " + self._action_form(sid, "/actions/feed", {"action": flip, "url": f["url"]},
                                               flip.capitalize(), f"{flip}-{i}")
            rows.append([_td(f["name"] or f["title"] or ""), _td(f["url"]), _td(f["state"]),
                         _td(f.get("delivery") or "poll"), _td(f["last_poll"] or "-"), _td(f["next_poll"] or "-"),
                         _td(f["last_result"] or f["last_error"] or "-"), _td(f["error_count"], True),
                         f"<td>{actions}</td>"])
        return _table(["feed", "url", "status", "push/poll", "last poll", "next poll", "last result", "errors", ""],
                      rows, "feeds")

    def _dlq(self, stage: str, sid: str | None) -> str:
        choices = [n for n in stages.NAMES if n != "poll"]
        if stage not in choices:
            stage = "extract"
        tabs = " · ".join(f'<a href="/dlq?stage={n}">{"<b>" + n + "</b>" if n == stage else n}</a>' for n in choices)
        letters = self.data.dead_letters(stage)
        rows = []
        for d in letters:
            headers = "\n".join(f"{k}: {v[:300]}" for k, v in d["headers"].items()
                                if not k.endswith("exception.stacktrace"))
            act = self._action_form(sid, "/actions/redrive", {"stage": stage, "partition": d["partition"],
                                                              "offset": d["offset"]}, "Re-drive",
                                    f"redrive-{d['partition']}-{d['offset']}")
            rows.append([_td(f"{d['partition']}@{d['offset']}"), _td(d["key"]),
                         f"<td><b>{esc(d['error_class'].rsplit('.', 1)[-1])}</b><br>{esc(d['error'][:500])}</td>",
                         f"<td><pre>{esc((d['value'] or '')[:2000])}</pre></td>", f"<td><pre>{esc(headers)}</pre></td>",
                         f"<td>{act}</td>"])
        all_form = self._action_form(sid, "/actions/redrive", {"stage": stage}, f"Re-drive all {len(letters)}",
                                     "redrive-all") if letters else ""
        return (f"<p>{tabs}</p><p>{len(letters)} dead letter(s) of <b>{esc(stage)}</b> not re-driven yet. "
                f"{all_form}</p>"
                + _table(["at", "key", "error", "value", "headers", ""], rows, "dead-letters"))

    def _stories(self) -> str:
        parts = []
        for s in self.data.stories():
            dups = "".join(f"<li>{esc(d.get('source'))}: <a href=\"{esc(d.get('url'))}\">{esc(d.get('title'))}</a> "
                           f"<span class=\"muted\">({esc((d.get('dedupe') or {}).get('signal'))}, similarity "
                           f"{esc((d.get('dedupe') or {}).get('similarity'))})</span></li>" for d in s["duplicates"])
            removed = "".join(f"<li><span class=\"muted\">{esc(r.get('reason'))}:</span> {esc(r.get('text', '')[:200])}</li>"
                              for r in (s.get("boilerplate") or {}).get("removed", []))
            parts.append(
                f'<div class="story"><h3><a href="{esc(s.get("url"))}">{esc(s.get("title"))}</a></h3>'
                f'<div class="muted">{esc(s.get("source"))} · {esc(s.get("published"))} · {esc(s.get("language"))} · '
                f'{esc(s.get("word_count"))} words · id {esc(s.get("id"))}</div>'
                f'<p>{esc((s.get("text") or "")[:400])}…</p>'
                f'<b>Duplicates ({len(s["duplicates"])})</b><ul class="dups">{dups or "<li class=muted>none</li>"}</ul>'
                f'<b>Boilerplate removed ({len((s.get("boilerplate") or {}).get("removed", []))})</b>'
                f'<ul class="removed">{removed or "<li class=muted>none</li>"}</ul></div>')
        return "".join(parts) or '<p class="muted">No stories on articles.enriched yet.</p>'

    def _inspect(self, url: str) -> str:
        form = (f'<form method="get" action="/inspect" id="inspect-form"><input name="url" size="80" '
                f'placeholder="https://example.com/story" value="{esc(url)}"> <button type="submit">Inspect</button>'
                '</form><p class="muted">Fetches the page (with the config\'s fetch limits and address checks) and '
                "runs extract, boilerplate and enrich on it; nothing is written to any topic.</p>")
        if not url:
            return form
        r = self.data.inspect(url)
        if "error" in r:
            return form + f'<div class="err" id="inspect-error">{esc(r["error"])}</div>'
        bp = (r.get("boilerplate") or {}).get("removed", [])
        ents = r.get("entities") or {}
        sections = [
            ("extract", [("title", r.get("title")), ("canonical URL", r.get("canonical_url")), ("id", r.get("id")),
                         ("source", r.get("source")), ("authors", ", ".join(r.get("authors") or [])),
                         ("published", r.get("published")), ("text from", r.get("text_source"))]),
            ("boilerplate", [("removed", "; ".join(f"{b.get('reason')}: {b.get('text', '')[:120]}" for b in bp) or "none"),
                             ("flagged", (r.get("boilerplate") or {}).get("flagged"))]),
            ("enrich", [("language", f"{r.get('language')} ({r.get('language_confidence')})"),
                        ("people", ", ".join(e["name"] for e in ents.get("people", []))),
                        ("organizations", ", ".join(e["name"] for e in ents.get("organizations", []))),
                        ("locations", ", ".join(e["name"] for e in ents.get("locations", []))),
                        ("keywords", ", ".join(r.get("keywords") or [])), ("words", r.get("word_count"))]),
        ]
        out = form
        for name, fields in sections:
            out += f"<h2>{esc(name)}</h2>" + _table(["field", "value"], [[_td(k), _td(v)] for k, v in fields],
                                                    f"inspect-{name}")
        return out + f"<h2>text</h2><pre id=\"inspect-text\">{esc(r.get('text'))}</pre>"

    def _login_form(self) -> str:
        if not self.token:
            return "<p>This console is read-only: start it with --token-file (or PIPELINE_CONSOLE_TOKEN) to act.</p>"
        return ('<form method="post" action="/login" id="login-form"><input type="password" name="token" '
                'placeholder="console token" size="40"> <button type="submit">Sign in</button></form>')

    # --- actions ---

    def act(self, path: str, form: dict[str, str], sid: str | None) -> tuple[str, str]:
        """Run a POSTed action; return ``(page to go back to, message)``. Raises PermissionError
        without a valid session and CSRF token, PipelineError when the action fails."""
        if not self.token:
            raise PermissionError("the console is read-only (started without a token)")
        if not self.csrf_ok(sid, form.get("csrf", "")):
            raise PermissionError("sign in first (missing or stale session or CSRF token)")
        if path == "/actions/redrive":
            stage = form.get("stage", "")
            if stage not in stages.NAMES or stage == "poll":
                raise PipelineError(f"console: no dead letters for stage {stage!r}")
            part = int(form["partition"]) if form.get("partition", "").isdigit() else None
            off = int(form["offset"]) if form.get("offset", "").isdigit() else None
            return f"/dlq?stage={stage}", self.data.redrive(stage, part, off)
        if path == "/actions/feed":
            return "/feeds", self.data.feed_action(form.get("action", ""), form.get("url", ""))
        raise PipelineError(f"console: no action {path}")


# --- HTTP ----------------------------------------------------------------------------------


class ConsoleHandler(BaseHTTPRequestHandler):
    """The console's HTTP side: GET pages, POST actions, for the ``console`` class attribute.

    ``make_server`` serves it on its own port; a worker's metrics server
    (``pipeline.observe.serve`` with ``observe.console: true``) mixes it in behind /metrics,
    /live and /ready, so both serve the same pages under the same guard."""

    console: Console
    server_version = "pipeline-console"

    def _send(self, code: int, body: bytes, ctype: str = "text/html; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # No framing by other sites (clickjacking an action button), no inline scripts at all.
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                                    "img-src 'self'; form-action 'self'; frame-ancestors 'none'")
        self.send_header("Referrer-Policy", "same-origin")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, to: str, extra: dict[str, str] | None = None) -> None:
        self._send(303, b"", extra={"Location": to, **(extra or {})})

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        console = self.console
        parts = urlsplit(self.path)
        code, body = console.render(parts.path, parse_qs(parts.query), console.session(self.headers.get("Cookie")))
        self._send(code, body)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        console = self.console
        parts = urlsplit(self.path)
        length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        origin = self.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != self.headers.get("Host"):
            self._send(403, b"cross-site request refused\n", "text/plain")
            return
        sid = console.session(self.headers.get("Cookie"))
        if parts.path == "/login":
            new = console.login(form.get("token", ""))
            if new is None:
                self._redirect("/login?err=" + quote("wrong token" if console.token else "read-only console"))
                return
            cookie = f"{SESSION_COOKIE}={new}; HttpOnly; SameSite=Strict; Path=/"
            self._redirect("/?msg=" + quote("signed in"), {"Set-Cookie": cookie})
            return
        try:
            back, msg = console.act(parts.path, form, sid)
        except PermissionError as exc:
            self._send(403, _page("Refused", "", err=str(exc), signed_in=sid is not None,
                                  can_act=bool(console.token)))
            return
        except (PipelineError, ValueError, KeyError) as exc:
            back = "/feeds" if parts.path == "/actions/feed" else f"/dlq?stage={quote(form.get('stage', ''))}"
            self._redirect(back + ("&" if "?" in back else "?") + "err=" + quote(str(exc)[:500]))
            return
        self._redirect(back + ("&" if "?" in back else "?") + "msg=" + quote(msg))

    def log_message(self, fmt: str, *args) -> None:
        log.debug("console: " + fmt, *args)


def make_server(console: Console, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for ``console`` on ``host:port`` (0 = any free port), not yet serving.
    Raises OSError when it cannot listen there."""
    server = ThreadingHTTPServer((host, port), type("Handler", (ConsoleHandler,), {"console": console}))
    server.daemon_threads = True
    return server


def read_token(token_file: str | os.PathLike[str] | None) -> str | None:
    """The token that enables actions: the first line of ``token_file`` when given, else
    ``PIPELINE_CONSOLE_TOKEN``; None (read-only) when neither is set.

    Raises PipelineError when the file cannot be read or the token is under 16 characters."""
    token = os.environ.get("PIPELINE_CONSOLE_TOKEN") or None
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise PipelineError(f"console: cannot read the token file {token_file}: {exc.strerror}") from None
    if token is not None and len(token) < 16:
        raise PipelineError("console: the token must have at least 16 characters")
    return token


def serve_forever(server: ThreadingHTTPServer, stop: threading.Event, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until ``stop`` is set."""
    thread = threading.Thread(target=server.serve_forever, name="console-http", daemon=True)
    thread.start()
    if on_ready:
        on_ready()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()

