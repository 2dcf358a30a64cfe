#!/usr/bin/env python3
"""Published day, byline and title of the pipeline next to trafilatura and htmldate, in one run.

    python bench/metadata_accuracy.py ../shared/bench-data/metadata [--json OUT] [--only d|r]

The pages are served from memory by an HTTP server on 127.0.0.1, each under its
original URL's path (``http://127.0.0.1:PORT/<host>/<path>``: dates in URLs are part of
the signal), and read:

(a) by the pipeline through the same code path as ``pipeline inspect URL`` (the
    ``Inspector``: the real fetcher, then extract -> boilerplate -> enrich), with
    ``fetch.allow_private_addresses`` on so that the loopback server may be fetched;
(b) by trafilatura ``bare_extraction(bytes, url=URL, with_metadata=True)``;
(c) by htmldate ``find_date(bytes, url=URL, extensive_search=True, original_date=True)``;

the libraries getting the very bytes and URL the pipeline fetched.  Metrics (the data's
README): date accuracy on ``d-*`` (predicted YYYY-MM-DD equals the truth; none is wrong),
title exact and byline token F1 on ``r-*`` (NFKC, case folding, punctuation to spaces,
whitespace collapsed; "by"/"and" dropped from byline tokens).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import sys
import threading
import time
import unicodedata
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

logging.disable(logging.WARNING)


# --- metrics (the data's README) ------------------------------------------------------------

def norm(text: str | None) -> str:
    """NFKC, case folding, punctuation (and symbols) to spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(text.split())


def byline_f1(predicted: str | None, truth: str) -> float:
    """Token F1 of two bylines, "by" and "and" left out."""
    p = Counter(t for t in norm(predicted).split() if t not in ("by", "and"))
    t = Counter(t for t in norm(truth).split() if t not in ("by", "and"))
    common = sum((p & t).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def day(value: str | None) -> str | None:
    m = re.match(r"\d{4}-\d{2}-\d{2}", value or "")
    return m.group(0) if m else None


# --- serving the pages -----------------------------------------------------------------------

def serve(pages: dict[str, bytes]) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = pages.get(unquote(self.path))  # clients may re-encode %d8 as %D8
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def served_path(key: str, meta: dict) -> str:
    """The original URL's host and path (and query) for d-* pages; a made-up path for r-*."""
    url = meta.get("url")
    if not url:
        return f"/readability/{key[2:]}/source.html"  # its file name in the Readability test suite
    parts = urlsplit(url)
    path = "/" + quote(parts.hostname or "site", safe="") + quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    return path + (f"?{parts.query}" if parts.query else "")


# --- the systems --------------------------------------------------------------------------------

def run_pipeline(urls: dict[str, str]) -> dict[str, dict]:
    from pipeline.commands.inspect import Inspector
    from pipeline.config import loads

    settings = loads("fetch:\n  allow_private_addresses: true\n")
    inspector = Inspector(settings)
    out = {}
    try:
        for key, url in urls.items():
            r = inspector.inspect(url)
            # The day as the page states it (its own UTC offset) when the page's date won; the
            # byline a reader is shown: the people, else the organisation credited.
            out[key] = {"date": r.get("published_local") or r.get("published"), "title": r.get("title"),
                        "authors": r.get("authors") or r.get("credit") or [],
                        "error": r.get("error"), "source": r.get("published_source"),
                        "page_type": r.get("page_type")}
    finally:
        inspector.close()
    return out


def run_trafilatura(pages: dict[str, bytes], urls: dict[str, str]) -> dict[str, dict]:
    from trafilatura import bare_extraction

    out = {}
    for key, data in pages.items():
        try:
            doc = bare_extraction(data, url=urls[key], with_metadata=True)
        except Exception as exc:  # noqa: BLE001 - a library failure is a miss, not a crash
            out[key] = {"date": None, "title": None, "authors": [], "error": repr(exc)}
            continue
        if doc is None:
            out[key] = {"date": None, "title": None, "authors": []}
            continue
        authors = [a.strip() for a in (doc.author or "").split(";") if a.strip()]
        out[key] = {"date": doc.date, "title": doc.title, "authors": authors}
    return out


def run_htmldate(pages: dict[str, bytes], urls: dict[str, str]) -> dict[str, dict]:
    from htmldate import find_date

    out = {}
    for key, data in pages.items():
        try:
            out[key] = {"date": find_date(data, url=urls[key], extensive_search=True, original_date=True)}
        except Exception:  # noqa: BLE001
            out[key] = {"date": None}
    return out


def half(key: str) -> str:
    """The page's half, "A" or "B", by the first byte of the SHA-1 of its id: rules are developed on
    the failures and must help, or leave alone, both halves (a rule that helps one half and hurts
    the other is fitted to pages, not to how pages are written)."""
    return "A" if hashlib.sha1(key.encode()).digest()[0] % 2 == 0 else "B"


def date_split(preds: dict[str, dict], truth: dict[str, dict]) -> dict[str, tuple[int, int]]:
    """``{"A": (right, pages), "B": ..., "dated": ...}``: date accuracy by half, and over the pages
    whose truth has a day at all ("dated": the README's metric counts a page without one as wrong
    whatever is predicted)."""
    out = {}
    for name, keep in (("A", lambda k: half(k) == "A"), ("B", lambda k: half(k) == "B"),
                       ("dated", lambda k: bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(truth[k]["date"]))))):
        keys = [k for k in preds if k.startswith("d-") and keep(k)]
        out[name] = (sum(day(preds[k].get("date")) == truth[k]["date"] for k in keys), len(keys))
    return out


def score(preds: dict[str, dict], truth: dict[str, dict]) -> dict[str, float | None]:
    dates = [k for k in preds if k.startswith("d-")]
    titled = [k for k in preds if k.startswith("r-") and truth[k].get("title")]
    bylined = [k for k in preds if k.startswith("r-") and truth[k].get("byline")]
    res: dict[str, float | None] = {"date": None, "byline": None, "title": None}
    if dates:
        res["date"] = sum(day(preds[k].get("date")) == truth[k]["date"] for k in dates) / len(dates)
    if titled and "title" in next(iter(preds.values())):
        res["title"] = sum(norm(preds[k].get("title")) == norm(truth[k]["title"]) for k in titled) / len(titled)
    if bylined and "authors" in next(iter(preds.values())):
        res["byline"] = sum(byline_f1(" ".join(preds[k].get("authors") or []), truth[k]["byline"])
                            for k in bylined) / len(bylined)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--json", type=Path, help="write every system's per-page predictions here")
    ap.add_argument("--only", choices=("d", "r"), help="only the date pages (d) or the Readability pages (r)")
    ap.add_argument("--systems", default="pipeline,trafilatura,htmldate",
                    help="comma-separated subset of pipeline,trafilatura,htmldate")
    args = ap.parse_args()
    truth = json.loads((args.data_dir / "truth.json").read_text(encoding="utf-8"))
    if args.only:
        truth = {k: v for k, v in truth.items() if k.startswith(args.only + "-")}
    raw = {k: gzip.decompress((args.data_dir / "html" / f"{k}.html.gz").read_bytes()) for k in truth}
    paths = {k: served_path(k, v) for k, v in truth.items()}
    server, port = serve({unquote(paths[k]): raw[k] for k in truth})
    urls = {k: f"http://127.0.0.1:{port}{paths[k]}" for k in truth}
    wanted = args.systems.split(",")
    runners = {"pipeline": lambda: run_pipeline(urls), "trafilatura": lambda: run_trafilatura(raw, urls),
               "htmldate": lambda: run_htmldate(raw, urls)}
    n_d = sum(k.startswith("d-") for k in truth)
    n_t = sum(k.startswith("r-") and bool(v.get("title")) for k, v in truth.items())
    n_b = sum(k.startswith("r-") and bool(v.get("byline")) for k, v in truth.items())
    print(f"{len(truth)} pages: {n_d} date pages, {n_t} titled and {n_b} bylined Readability pages")
    print(f"{'system':<14} {'date':>6} {'byline':>7} {'title':>6} {'errors':>7} {'s':>6}")
    everything = {}
    try:
        for name in wanted:
            t0 = time.perf_counter()
            preds = runners[name]()
            elapsed = time.perf_counter() - t0
            res = score(preds, truth)
            errors = sum(bool(p.get("error")) for p in preds.values())
            cells = " ".join(f"{res[m]:{w}.3f}" if res[m] is not None else f"{'-':>{w}}"
                             for m, w in (("date", 6), ("byline", 7), ("title", 6)))
            print(f"{name:<14} {cells} {errors:>7} {elapsed:6.1f}", flush=True)
            everything[name] = preds
    finally:
        server.shutdown()
    if n_d:
        print("date by half (sha1 of the id) and over the pages whose truth has a day:")
        for name, preds in everything.items():
            cells = "  ".join(f"{part} {right / n:.3f} ({right}/{n})" for part, (right, n)
                              in date_split(preds, truth).items() if n)
            print(f"  {name:<12} {cells}")
    print("targets: date >= 0.95, byline >= 0.80, title >= 0.80, none below trafilatura/htmldate")
    if args.json:
        args.json.write_text(json.dumps({"truth": truth, "urls": urls, **everything}, ensure_ascii=False,
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
