"""feeds add|remove edit the YAML's feeds: list and nothing else."""

import pytest

from pipeline.cli import main
from pipeline.config import load

BLOCK = """\
# my pipeline
transport:
  kind: local   # keep this comment
feeds:
  - url: https://a.example/rss
    name: A
    tags: [x]
  # B is flaky
  - https://b.example/feed
fetch:
  max_bytes: 1000000
"""


def urls(cfg):
    return [f.url for f in load(cfg, env={}).feeds]


@pytest.mark.parametrize("text", [BLOCK, "feeds: []\n", "feeds: []  # none yet\nstate_dir: s\n", "state_dir: s\n",
                                  "feeds: [https://a.example/rss, {url: 'https://b.example/f'}]\n"])
def test_add_then_remove_gives_back_the_same_file(tmp_path, text):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(text)
    before = urls(cfg)
    assert main(["feeds", "add", "https://n.example/a?b=1&c=#x", "--name", "N: one", "--tag", "t",
                 "--config", str(cfg)]) == 0
    assert urls(cfg) == before + ["https://n.example/a?b=1&c=#x"]
    added = load(cfg, env={}).feeds[-1]
    assert added.name == "N: one" and added.tags == ["t"]
    assert main(["feeds", "remove", "N: one", "--config", str(cfg)]) == 0
    assert urls(cfg) == before
    if text.startswith(("# my", "feeds: []", "feeds: [https")):
        assert cfg.read_text() == text  # byte for byte: comments and layout kept


def test_remove_keeps_comments_and_other_sections(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(BLOCK)
    assert main(["feeds", "remove", "https://a.example/rss", "--config", str(cfg)]) == 0
    text = cfg.read_text()
    assert "https://a.example/rss" not in text and "keep this comment" in text and "B is flaky" in text
    assert urls(cfg) == ["https://b.example/feed"]
    assert main(["feeds", "remove", "https://b.example/feed", "--config", str(cfg)]) == 0
    assert urls(cfg) == [] and load(cfg, env={}).fetch.max_bytes == 1000000


def test_refuses_duplicates_unknown_feeds_and_bad_urls_without_touching_the_file(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(BLOCK)
    assert main(["feeds", "add", "https://a.example/rss", "--config", str(cfg)]) == 1
    assert main(["feeds", "remove", "nope", "--config", str(cfg)]) == 2
    assert main(["feeds", "add", "ftp://x.example/f", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "already listed" in err and "no feed with url or name 'nope'" in err
    assert "would not load" in err and "http" in err
    assert cfg.read_text() == BLOCK
