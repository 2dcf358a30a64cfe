"""The boilerplate stage: output shape, learned templates, replay, and its config."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from pipeline import models, topics
from pipeline.config import ConfigError, loads
from pipeline.stages import load
from pipeline.stages.base import Context
from tests.unit.boilerplate.fixtures import PAGES, story, value

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def make_stage(tmp_path, extra: str = "", now=lambda: T0):
    settings = loads(f"state_dir: state\nboilerplate:\n  templates:\n    min_articles: 10\n    min_share: 0.5\n{extra}",
                     base_dir=tmp_path)
    return load("boilerplate")(Context(settings=settings, now=now))


def test_stage_identity():
    cls = load("boilerplate")
    assert (cls.name, cls.input_topic, cls.output_topics) == ("boilerplate", topics.ARTICLES_UNIQUE,
                                                             (topics.ARTICLES_CLEAN,))


@pytest.mark.parametrize("as_blocks", [True, False])
@pytest.mark.parametrize("name", PAGES)
def test_output_is_a_valid_clean_article_with_the_story_alone(tmp_path, name, as_blocks):
    stage = make_stage(tmp_path)
    v = value(name, as_blocks=as_blocks)
    (out,) = stage.process(v)
    assert out.topic == topics.ARTICLES_CLEAN and out.message_key == v["id"]
    models.validate(out.value, topics.ARTICLES_CLEAN)
    assert out.value["text"] == story(PAGES[name][3])
    assert "\n\n".join(b["text"] for b in out.value["blocks"]) == out.value["text"]
    bp = out.value["boilerplate"]
    assert bp["flagged"] is False and bp["removed"]
    assert all(set(r) == {"text", "reason"} for r in bp["removed"])
    for key in v:  # a stage adds fields and removes none
        assert key in out.value


def _article(k: int, template: str | None) -> dict:
    rnd = random.Random(k)
    vocab = ("bridge library tram harbour council budget school river festival museum market stadium "
             "hospital park station tunnel orchestra archive garden bakery ferry lighthouse clinic").split()
    paras = [" ".join(rnd.choice(vocab) for _ in range(14)).capitalize() + "." for _ in range(3)]
    if template:
        paras.insert(2, template)
    url = f"https://www.gazette.example/story-{k}"
    return {"schema_version": 1, "id": f"a{k}", "url": url, "canonical_url": url,
            "feed_url": "https://www.gazette.example/rss", "title": f"Story {k}", "text": "\n\n".join(paras),
            "blocks": [], "dedupe": {"status": "unique", "cluster_id": f"a{k}"}}


PROMO = "Our reporters stay on the ground for you. Support independent local journalism."


def _removed(stage, k):
    (out,) = stage.process(_article(k, PROMO))
    return [r["reason"] for r in out.value["boilerplate"]["removed"]]


def test_templates_learned_only_after_n_articles_and_persisted_on_commit(tmp_path):
    stage = make_stage(tmp_path)
    for k in range(10):  # the first ten see fewer than ten other articles
        assert _removed(stage, k) == []
    assert _removed(stage, 10) == ["learned-template"]
    stage.commit()
    stage.close()
    fresh = make_stage(tmp_path)  # learned state survives a restart
    assert _removed(fresh, 11) == ["learned-template"]
    (out,) = fresh.process(_article(12, None))
    assert out.value["boilerplate"]["removed"] == []  # the story paragraphs were never learned


def test_uncommitted_observations_are_lost_and_replay_is_idempotent(tmp_path):
    stage = make_stage(tmp_path)
    for k in range(10):
        stage.process(_article(k, PROMO))
    stage.close()  # crash before commit: nothing learned
    stage = make_stage(tmp_path)
    assert _removed(stage, 10) == []
    for _ in range(3):  # the same article replayed counts once
        for k in range(5):
            stage.process(_article(k, PROMO))
        stage.commit()
    assert _removed(stage, 20) == []  # only 6 distinct articles seen so far
    first = stage.process(_article(3, PROMO))[0].value
    again = stage.process(_article(3, PROMO))[0].value
    assert first == again


def test_templates_forget_articles_outside_the_window(tmp_path):
    clock = {"now": T0}
    stage = make_stage(tmp_path, "    window_days: 7\n", now=lambda: clock["now"])
    for k in range(12):
        stage.process(_article(k, PROMO))
    stage.commit()
    assert _removed(stage, 50) == ["learned-template"]
    clock["now"] = T0 + timedelta(days=8)
    assert _removed(stage, 51) == []


def test_flagged_article_keeps_its_text(tmp_path):
    stage = make_stage(tmp_path, "  max_removed_share: 0.05\n")
    v = value("harvest", as_blocks=False)
    (out,) = stage.process(v)
    assert out.value["boilerplate"]["flagged"] is True
    assert out.value["boilerplate"]["removed"] == []
    assert out.value["text"] == v["text"]


def test_operator_rules_from_config(tmp_path):
    extra = ("  max_removed_share: 0.9\n  rules:\n"
             "    - name: nordblick-comments\n      match: regex\n      pattern: '^Der Fahrradclub lobte'\n"
             "      sources: [nordblick.example]\n")
    stage = make_stage(tmp_path, extra)
    (out,) = stage.process(value("bike-lane"))
    assert {"text": PAGES["bike-lane"][3][6][1], "reason": "operator-rule:nordblick-comments"} \
        in out.value["boilerplate"]["removed"]


def test_config_reports_a_bad_regex_and_an_unknown_rule_family_by_key_path():
    text = ("boilerplate:\n  disable: [captions]\n  rules:\n    - name: broken\n      match: regex\n"
            "      pattern: '([unclosed'\n")
    with pytest.raises(ConfigError) as err:
        loads(text)
    problems = {path: (line, msg) for path, line, msg in err.value.problems}
    assert problems["boilerplate.rules.0.pattern"][0] == 6
    assert "regex does not compile" in problems["boilerplate.rules.0.pattern"][1]
    assert "boilerplate.disable" in problems
    loads("boilerplate:\n  rules:\n    - {name: ok, match: substring, pattern: '([not a regex'}\n")
