"""Property-based tests (hypothesis) for the message codec, URL canonicalisation,
the feed parser and the config loader.

Each property states what must hold for *every* input of a kind, not for a few
hand-picked ones.  A property that a known bug breaks keeps its full strategy,
pins the failing input with ``@example`` (so the failure is deterministic) and is
marked ``xfail(strict=True)``: CI stays green, the bug stays visible, and the
marker must be removed when the bug is fixed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape as xml_escape, quoteattr

import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from pipeline import models, topics, urls
from pipeline.config import ConfigError, loads
from pipeline.errors import MessageError
from pipeline.feeds.parser import NotAFeed, ParsedFeed, parse_feed
from pipeline.textnorm import clean_label

# Modest example counts keep the whole file to a few seconds; the deadline is
# generous (feedparser is slow on its first call) but still catches a hang.
FAST = settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=80, deadline=3000, suppress_health_check=[HealthCheck.too_slow])

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


# --- strategies --------------------------------------------------------------------

# JSON-compatible values as the codec promises to carry them: surrogate-free text
# (hypothesis' default alphabet has no surrogates), ints within orjson's 64-bit
# range, finite floats.
json_scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)

# Bytes that are almost JSON: the tokens that trip parsers (NaN, huge exponents,
# lone-surrogate escapes, invalid UTF-8) glued together at random.
_JSON_TOKENS = [b"{", b"}", b"[", b"]", b'"a"', b'"b"', b":", b",", b"1", b"-0", b"1e400", b"NaN",
                b"Infinity", b"-Infinity", b'"\\ud800"', b'"\\udc00x"', b'"\\u00e9"', b"null", b"true",
                b"12345678901234567890123", b"\xff", b"\xef\xbb\xbf", b" ", b'"\xc3\xa9"']
jsonish_bytes = st.lists(st.sampled_from(_JSON_TOKENS), max_size=20).map(b"".join)
deep_json = st.integers(min_value=900, max_value=30_000).map(lambda n: b'{"a":' + b"[" * n + b"]" * n + b"}")
any_bytes = st.binary(max_size=300) | jsonish_bytes | deep_json

_FEED_ENTRY_FIELDS = {"id": st.text(max_size=10), "url": st.text(max_size=20), "feed_url": st.text(max_size=20)}
# A value for feed.entries: each field present or not, right-typed or arbitrary.
feed_entry_like = st.fixed_dictionaries(
    {},
    optional={
        **{k: v | json_values for k, v in _FEED_ENTRY_FIELDS.items()},
        "title": st.none() | st.text(max_size=10) | json_values,
        "authors": st.lists(st.text(max_size=5), max_size=3) | json_values,
        "is_update": st.booleans() | json_values,
        "enclosures": st.lists(st.fixed_dictionaries({"url": st.text(max_size=5)}), max_size=2) | json_values,
        "schema_version": st.integers(-3, 5) | json_values,
        "extra_field": json_values,
    },
)

# URL pieces.  The path alphabet is rich in '%' and hex digits so that escapes,
# escaped escapes (%25xx) and broken escapes all turn up.
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
hosts = st.builds(lambda labels, tld: ".".join(labels + [tld]), st.lists(_label, min_size=1, max_size=3),
                  st.sampled_from(["com", "org", "example", "co.uk"]))
_path_piece = (st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@%25AFf/ ", max_size=6)
               | st.sampled_from(["%2F", "%25", "%2541", "%FF", "%e9", "%C3%A9", "é", "日本", "%", "%zz", "//"]))
# A URL as a feed gives it has no whitespace at its ends; inside, spaces are kept (as %20).
paths = st.lists(_path_piece, max_size=6).map(lambda ps: ("/" + "".join(ps)).rstrip())
_param_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6).filter(
    lambda k: not urls.is_tracking_param(k))
query_pairs = st.lists(st.tuples(_param_name, st.text(max_size=8)), max_size=4)
tracking_pairs = st.lists(st.tuples(
    st.sampled_from(["utm_source", "utm_medium", "UTM_Campaign", "utm_content", "fbclid", "gclid", "mc_eid"]),
    st.text(max_size=8)), min_size=1, max_size=4)


@st.composite
def structured_urls(draw):
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    port = draw(st.sampled_from(["", ":8080", ":80", ":443"]))
    query = draw(st.sampled_from(["", "?"]) | st.text(max_size=15).map(lambda q: "?" + q)
                 | query_pairs.map(lambda q: "?" + urlencode(q)))
    frag = draw(st.sampled_from(["", "#", "#top"]))
    return f"{scheme}://{draw(hosts)}{port}{draw(paths)}{query}{frag}"


# --- codec -------------------------------------------------------------------------

@FAST
@given(json_objects)
def test_codec_roundtrips_json_values(value):
    decoded = models.decode(models.encode(value))
    assert decoded == {"schema_version": models.SCHEMA_VERSION, **value}


@FAST
@given(st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1))
@example(2**64)
def test_codec_refuses_ints_beyond_64_bits(n):
    # decode() (orjson) would read such an int back as a float: refusing it is the exact answer.
    with pytest.raises(MessageError, match=f"^codec: integer {n} does not fit in 64 bits$"):
        models.encode({"n": n})


@FAST
@given(any_bytes)
@example(b"[" * 100_000)  # deeper than the stdlib parser can recurse
@example(b'{"a": NaN}')
@example(b'{"a": "\\ud800"}')
def test_decode_of_any_bytes_gives_a_reencodable_object_or_message_error(raw):
    try:
        value = models.decode(raw)
    except MessageError as exc:
        assert str(exc).startswith("codec: ")
        return
    assert isinstance(value, dict)
    # What decode accepts, encode must write back unchanged (no NaN, no lone surrogates).
    assert models.decode(models.encode(value)) == {"schema_version": models.SCHEMA_VERSION, **value}


@FAST
@given(feed_entry_like)
def test_decode_with_topic_validates_or_names_a_field(value):
    raw = json.dumps(value).encode()
    try:
        out = models.decode(raw, topics.FEED_ENTRIES)
    except MessageError as exc:
        msg = str(exc)
        named = re.findall(r"(?:schema: |; )([^:;]+):", msg)
        fields = set(models.FeedEntry.model_fields)
        assert "schema_version" in msg or any(n.split(".")[0] in fields for n in named), msg
        return
    assert out == value  # validation does not coerce
    # Nothing newer than this worker understands gets through, however it is spelt.
    assert models.FeedEntry.model_validate(out).schema_version <= models.SCHEMA_VERSION


@FAST
@given(st.sampled_from([2, 99, "2", "99", 2.0, 99.0]))
def test_decode_refuses_newer_schema_version_however_spelt(version):
    value = {"id": "a", "url": "https://a.example/", "feed_url": "https://a.example/f", "schema_version": version}
    with pytest.raises(MessageError, match="newer"):
        models.decode(json.dumps(value).encode(), topics.FEED_ENTRIES)


# --- URLs --------------------------------------------------------------------------

@FAST
@given(st.text(max_size=60) | structured_urls())
@example("http://a.example/%2541")  # an escaped escape
@example("http://a.example/%FF")
def test_canonicalize_never_raises_and_is_idempotent(url):
    once = urls.canonicalize(url)
    assert urls.canonicalize(once) == once
    assert HEX32.match(urls.article_id(url))
    assert urls.article_id(once) == urls.article_id(url)


@FAST
@given(hosts, st.sampled_from(["http", "https"]), paths, query_pairs, tracking_pairs, st.randoms(),
       st.text(max_size=10), st.booleans(), st.booleans())
def test_click_noise_does_not_change_the_canonical_url(host, scheme, path, pairs, tracking, rnd, frag,
                                                       upper_host, default_port):
    base = f"{scheme}://{host}{path}" + (f"?{urlencode(pairs)}" if pairs else "")
    mixed = list(pairs)
    for t in tracking:
        mixed.insert(rnd.randint(0, len(mixed)), t)
    shuffled = list(mixed)
    rnd.shuffle(shuffled)
    port = {"http": ":80", "https": ":443"}[scheme] if default_port else ""
    noisy = (f"{scheme.upper() if upper_host else scheme}://{host.upper() if upper_host else host}{port}"
             f"{path}?{urlencode(shuffled)}#{frag}")
    assert urls.canonicalize(noisy) == urls.canonicalize(base)
    assert urls.article_id(noisy) == urls.article_id(base)


_segments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=6)


@FAST
@given(st.lists(_segments, min_size=1, max_size=3), st.lists(_segments, min_size=1, max_size=3))
def test_different_paths_give_different_ids(a, b):
    assume(a != b)
    ua = "https://news.example.com/" + quote("/".join(a), safe="/")
    ub = "https://news.example.com/" + quote("/".join(b), safe="/")
    assert urls.article_id(ua) != urls.article_id(ub)


@FAST
@given(st.binary(min_size=1, max_size=6), st.binary(min_size=1, max_size=6))
@example(b"caf\xe9", b"caf\xe8")  # Latin-1 paths: not UTF-8
def test_different_percent_encoded_byte_paths_give_different_ids(a, b):
    assume(a != b)
    assert urls.article_id("https://x.example/" + quote(a, safe="")) != \
        urls.article_id("https://x.example/" + quote(b, safe=""))


@FAST
@given(st.text(max_size=40) | structured_urls())
def test_guid_key_and_domain_never_raise(s):
    assert isinstance(urls.guid_key(s), str)
    d = urls.domain(s)
    assert d == d.lower() and not d.startswith("www.")


# --- feed parser -------------------------------------------------------------------

# XML-safe text: no surrogates, no C0/C1 controls, no non-characters.
_xml_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")


def _reads_as_double_encoded(s: str) -> bool:
    """feedparser 'repairs' text that looks like UTF-8 decoded as cp1252 ("Â¡" -> "¡");
    a real title of that shape is vanishingly rare, so such draws are left out."""
    try:
        return s.encode("cp1252").decode("utf-8") != s
    except UnicodeError:
        return False


titles = st.text(_xml_chars, min_size=1, max_size=30).filter(lambda s: s.strip() and not _reads_as_double_encoded(s))
dates = st.none() | st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31),
                                 timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2)),
                                                            timezone(timedelta(hours=-5, minutes=-30))]))


@st.composite
def entries(draw):
    n = draw(st.integers(min_value=1, max_value=5))
    host = draw(hosts)
    out = []
    for i in range(n):
        slug = draw(st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=10))
        query = draw(st.sampled_from(["", "?a=1&b=2", "?q=%C3%A9"]))
        dt = draw(dates)
        out.append({"title": draw(titles), "link": f"https://{host}/{i}/{slug}{query}",
                    "date": dt.replace(microsecond=0) if dt else None})
    return out


def _utc(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _rss(items):
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed</title>'
             "<link>https://feed.example/</link><description>d</description>"]
    for e in items:
        parts.append(f"<item><title>{xml_escape(e['title'])}</title><link>{xml_escape(e['link'])}</link>"
                     f"<guid isPermaLink=\"false\">{xml_escape(e['link'])}#g</guid>")
        if e["date"]:
            parts.append(f"<pubDate>{format_datetime(e['date'])}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8"), {"Content-Type": "application/rss+xml; charset=utf-8"}


def _atom(items):
    parts = ['<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
             "<title>Feed</title><id>urn:feed</id><updated>2020-01-01T00:00:00Z</updated>"]
    for i, e in enumerate(items):
        parts.append(f"<entry><title type=\"text\">{xml_escape(e['title'])}</title>"
                     f"<link rel=\"alternate\" href={quoteattr(e['link'])}/>"
                     f"<id>urn:entry:{i}</id>")
        if e["date"]:
            parts.append(f"<published>{e['date'].isoformat()}</published><updated>{e['date'].isoformat()}</updated>")
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts).encode("utf-8"), {"Content-Type": "application/atom+xml"}


def _json_feed(items):
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "Feed", "items": [
        {"id": str(i), "url": e["link"], "title": e["title"],
         **({"date_published": e["date"].isoformat()} if e["date"] else {})}
        for i, e in enumerate(items)]}
    return json.dumps(doc).encode("utf-8"), {"Content-Type": "application/feed+json"}


@SLOW
@given(entries(), st.sampled_from([_rss, _atom, _json_feed]))
def test_wellformed_feeds_give_every_entry_with_title_link_and_utc_date(items, build):
    content, headers = build(items)
    first = parse_feed(content, headers, "https://feed.example/feed")
    assert first.problem is None, first.problem
    assert len(first.entries) == len(items)
    for got, want in zip(first.entries, items):
        # titles are normalised at the edge (pipeline.textnorm): NFC, no invisible characters
        assert got.title == (clean_label(want["title"]) or None)
        assert got.link == want["link"]
        assert got.published is None or ISO_UTC.match(got.published)
        assert got.published == _utc(want["date"])
    # The poller keys entries by article_id(link): the same document gives the same ids.
    second = parse_feed(content, headers, "https://feed.example/feed")
    ids = [urls.article_id(e.link) for e in first.entries]
    assert ids == [urls.article_id(e.link) for e in second.entries]
    assert [e.guid for e in first.entries] == [e.guid for e in second.entries]
    assert len(set(ids)) == len(ids)


_XML_OPENERS = [b"", b'<?xml version="1.0"?>', b'<rss version="2.0"><channel><item><title>',
                b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>', b"<rdf:RDF>", b"\xef\xbb\xbf<rss>",
                b'{"version":"https://jsonfeed.org/version/1","items":[', b"<!DOCTYPE rss [<!ENTITY a 'x'>]><rss>",
                b"<html><head><link rel=alternate type=application/rss+xml href=/f>", b"{", b"["]
_XML_BITS = [b"<item>", b"</item>", b"<title>", b"</title>", b"<link>https://a.example/x</link>",
             b"<pubDate>Mon, 99 Feb 2020 25:61:00 +9999</pubDate>", b"<updated>2020-13-45T00:00:00Z</updated>",
             b"&amp;", b"&bogus;", b"<![CDATA[x]]>", b"\x00", b"\xff\xfe", b"</channel></rss>", b"<entry>",
             b'{"url":"https://a.example/"}', b'"date_published":"yesterday"', b",", b"]}"]
feedish_bytes = st.builds(lambda opener, bits, tail: opener + b"".join(bits) + tail, st.sampled_from(_XML_OPENERS),
                          st.lists(st.sampled_from(_XML_BITS) | st.binary(max_size=8), max_size=12),
                          st.binary(max_size=20))
content_types = st.sampled_from([None, "application/rss+xml", "text/html", "application/json",
                                 "text/xml; charset=iso-8859-1", "application/xml; charset=bogus"])


def _check_parse(content, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    try:
        feed = parse_feed(content, headers, "https://feed.example/feed")
    except NotAFeed as exc:
        assert str(exc).startswith("parser: ")
        return None
    assert isinstance(feed, ParsedFeed)
    for e in feed.entries:
        assert e.published is None or ISO_UTC.match(e.published), e.published
        assert e.updated is None or ISO_UTC.match(e.updated), e.updated
    return feed


@FAST
@given(st.binary(max_size=400) | feedish_bytes, content_types)
def test_parser_never_raises_on_arbitrary_bytes(content, ctype):
    _check_parse(content, ctype)


@FAST
@given(st.integers(min_value=0, max_value=2**70), st.booleans())
@example(0xD800, True)
def test_parser_survives_any_numeric_character_reference(n, hexa):
    ref = (f"&#x{n:X};" if hexa else f"&#{n};").encode()
    _check_parse(b'<rss version="2.0"><channel><item><title>a ' + ref
                 + b"</title><link>https://a.example/x</link></item></channel></rss>", None)


def _strings(feed):
    yield feed.title, feed.link
    for e in feed.entries:
        yield e.title, e.link, e.guid, e.summary, e.content, *e.authors, *e.tags


@FAST
@given(st.lists(st.text(max_size=10), min_size=1, max_size=3), st.sampled_from(["\ud800", "\udfff", "\udc00x"]))
@example(["a"], "\ud800")
def test_parser_returns_only_utf8_encodable_text(words, surrogate):
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": w, "url": f"https://a.example/{w}{surrogate}", "title": w + surrogate} for w in words]}
    feed = _check_parse(json.dumps(doc).encode(), "application/feed+json")
    for group in _strings(feed):
        for s in group:
            if s is not None:
                s.encode("utf-8")


# --- config ------------------------------------------------------------------------

_KEYS = ["transport", "kind", "topic_prefix", "state_dir", "feeds", "url", "name", "tags", "backfill",
         "fetch", "max_bytes", "timeout", "runner", "poll", "extract", "dedupe", "boilerplate", "enrich",
         "observe", "allowed_networks", "user_agent", "bogus"]
yaml_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
                | st.sampled_from(["https://a.example/feed", "kafka", "local", "all", "none", "-1", "1e9"]))
yaml_docs = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5),
                                                                inner, max_size=4),
    max_leaves=12,
)
yamlish_text = st.text(max_size=80) | yaml_docs.map(lambda d: json.dumps(d)) | st.lists(
    st.sampled_from(["transport:", "  kind: kafka", "feeds:", "  - https://a.example/f", "  - url: x",
                     "fetch: {max_bytes: -1}", "state_dir: [1, 2]", "&a x", "*a", "? [a]\n: b", "!!binary zz",
                     "\t", "poll:\n  backfill: lots", "%YAML 1.1\n---", "!!python/object:os.system x", "'"]),
    max_size=6).map("\n".join)
env_names = st.lists(st.sampled_from(_KEYS) | st.sampled_from(["0", "1", ""]), min_size=1, max_size=3).map(
    lambda parts: "PIPELINE__" + "__".join(parts).upper())


def _loads_only_config_error(text, env):
    try:
        loads(text, env=env)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, tuple) and len(p) == 3 for p in exc.problems)


@FAST
@given(yamlish_text)
def test_config_loads_raises_only_config_error(text):
    _loads_only_config_error(text, {})


@FAST
@given(st.dictionaries(env_names, st.text(max_size=10) | yaml_scalars.map(str), max_size=3))
def test_config_env_overrides_raise_only_config_error_without_lists(env):
    _loads_only_config_error("transport:\n  kind: local\nfetch:\n  timeout: 5\n", env)


@FAST
@given(st.dictionaries(env_names, st.text(max_size=10), max_size=3))
@example({"PIPELINE__FEEDS__URL": "x"})
@example({"PIPELINE__FEEDS__X__URL": "x"})
def test_config_env_overrides_raise_only_config_error(env):
    _loads_only_config_error("feeds:\n  - https://a.example/f\n  - url: https://b.example/f\n", env)


# Few examples and no shrinking: each one recurses to the interpreter's limit.
@settings(max_examples=4, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(st.integers(min_value=3000, max_value=6000))
@example(3000)
def test_config_deeply_nested_yaml_is_a_config_error(depth):
    _loads_only_config_error("state_dir: " + "{a: " * depth + "1" + "}" * depth, {})
