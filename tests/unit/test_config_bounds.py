"""Config and OPML loading stay bounded in time and memory (issue 18, point 1 and 5)."""

import time

import pytest

from pipeline.config import MAX_YAML_NODES, ConfigError, load, loads, safe_yaml
from pipeline.feeds.opml import OPMLError, parse_opml


def alias_bomb(levels: int = 9, width: int = 9, indent: str = "") -> str:
    lines = [f"{indent}t0: &t0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}t{i}: &t{i} [" + ", ".join([f"*t{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def tags_bomb(levels: int = 9, width: int = 9) -> str:
    out = ["feeds:", "  - url: https://ok.example/feed.xml", "    tags: &t0 [" + ", ".join(["a"] * width) + "]"]
    for i in range(1, levels + 1):
        out += [f"  - url: https://ok.example/f{i}.xml", f"    tags: &t{i} [" + ", ".join([f"*t{i - 1}"] * width) + "]"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("text", [alias_bomb(), tags_bomb()], ids=["top-level", "feeds-tags"])
def test_alias_bomb_is_refused_quickly_naming_the_line(text):
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        loads(text)
    assert time.monotonic() - started < 5  # unbounded, this ran past 30 s and several GB
    (path, line, msg), = err.value.problems
    assert "alias" in msg and str(MAX_YAML_NODES) in msg
    assert line is not None and 1 <= line <= text.count("\n")


def test_modest_aliases_still_work():
    text = "feeds:\n  - url: https://ok.example/f0.xml\n    tags: &common [news, local]\n" + "".join(
        f"  - url: https://ok.example/f{i}.xml\n    tags: *common\n" for i in range(1, 50))
    settings = loads(text)
    assert len(settings.feeds) == 50
    assert all(f.tags == ["news", "local"] for f in settings.feeds)


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError) as err:
        loads("feeds: &a\n  - *a\n")
    assert "recursive alias" in str(err.value)


def test_oversized_config_is_refused_unread(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("feeds:\n" + "  - url: https://ok.example/feed.xml\n" * 300_000)
    with pytest.raises(ConfigError) as err:
        load(big)
    assert "over the" in str(err.value) and "limit" in str(err.value)


def test_error_for_a_huge_value_is_short():
    # A wrong-typed value that is big (but under the limits) is not printed whole.
    text = "fetch:\n  max_bytes: [" + ", ".join(["1"] * 50_000) + "]\n"
    with pytest.raises(ConfigError) as err:
        loads(text)
    assert len(str(err.value)) < 1000


@pytest.mark.parametrize("raw", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_numbers_are_refused_with_the_key_path(raw):
    with pytest.raises(ConfigError) as err:
        loads("", env={"PIPELINE__FETCH__DEADLINE": raw})
    (path, _, msg), = err.value.problems
    assert path == "fetch.deadline" and "finite" in msg and "[set by environment]" in msg
    with pytest.raises(ConfigError) as err:
        loads(f"fetch:\n  read_timeout: {raw}\n")
    assert err.value.problems[0][:2] == ("fetch.read_timeout", 2)


def test_alias_bomb_in_an_environment_override_is_refused():
    bomb = "{" + alias_bomb(indent="").replace("\n", ", ").rstrip(", ") + "}"
    with pytest.raises(ConfigError) as err:
        loads("", env={"PIPELINE__FETCH__DEADLINE": bomb})
    assert "alias" in str(err.value)


def test_safe_yaml_reads_ordinary_documents():
    assert safe_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert safe_yaml("") is None


# --- OPML --------------------------------------------------------------------------------

def test_opml_entity_declarations_are_refused_in_any_encoding():
    doc = ('<?xml version="1.0" encoding="utf-16"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
           '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><opml><body>'
           '<outline xmlUrl="https://x.example/&b;"/></body></opml>')
    for data in (doc.encode("utf-16"), doc.replace("utf-16", "utf-8").encode()):
        with pytest.raises(OPMLError, match="DOCTYPE declarations are not accepted"):
            parse_opml(data)


def test_opml_too_big_or_too_deep_is_refused():
    with pytest.raises(OPMLError, match="over the"):
        parse_opml(b"<opml><body>" + b" " * (17 * 1024 * 1024) + b"</body></opml>")
    with pytest.raises(OPMLError, match="nested more than"):
        parse_opml(b"<opml><body>" + b"<outline>" * 3000 + b"</outline>" * 3000 + b"</body></opml>")


def test_opml_still_reads_folders():
    feeds = parse_opml(b'<opml version="2.0"><body><outline text="News"><outline title="A" '
                       b'xmlUrl="https://a.example/f.xml"/></outline></body></opml>')
    assert [(f.url, f.name, f.tags) for f in feeds] == [("https://a.example/f.xml", "A", ["News"])]


def test_read_opml_refuses_a_huge_file_without_reading_it_whole(tmp_path):
    from pipeline.feeds.opml import MAX_OPML_BYTES, read_opml

    big = tmp_path / "big.opml"
    with big.open("wb") as f:
        f.write(b"<opml><body>")
        f.seek(MAX_OPML_BYTES * 4)
        f.write(b"</body></opml>")
    with pytest.raises(OPMLError, match="over the"):
        read_opml(big)
