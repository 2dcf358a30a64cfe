from pathlib import Path

import pytest

from pipeline.config import ConfigError, load, loads


def test_empty_config_is_valid_and_defaults_are_safe():
    s = loads("")
    assert s.transport.kind == "local"
    assert s.fetch.allow_private_addresses is False
    assert s.fetch.max_bytes == 10 * 1024 * 1024


def test_unknown_key_and_wrong_type_are_named_with_path_and_line():
    text = "transport:\n  kind: kafka\n  kafka:\n    bootstrap_servers: localhost:9092\n    procesing_guarantee: exactly_once\nfetch:\n  max_redirects: many\n"
    with pytest.raises(ConfigError) as err:
        loads(text)
    problems = {(p, line): msg for p, line, msg in err.value.problems}
    assert ("transport.kafka.procesing_guarantee", 5) in problems
    assert problems[("transport.kafka.procesing_guarantee", 5)] == "unknown key; did you mean 'processing_guarantee'?"
    assert ("fetch.max_redirects", 7) in problems


def test_bad_feed_url_named_by_index():
    with pytest.raises(ConfigError) as err:
        loads("feeds:\n  - url: https://ok.example/feed\n  - url: ftp://nope.example/feed\n")
    (path, line, msg), = err.value.problems
    assert path == "feeds.1.url" and line == 3 and "http" in msg


def test_environment_overrides_any_key():
    s = loads("transport:\n  kind: local\n", env={
        "PIPELINE__TRANSPORT__KIND": "kafka",
        "PIPELINE__TRANSPORT__KAFKA__BOOTSTRAP_SERVERS": "b1:9092,b2:9092",
        "PIPELINE__FETCH__MAX_BYTES": "2048",
        "UNRELATED": "x",
    })
    assert s.transport.kind == "kafka"
    assert s.transport.kafka.bootstrap_servers == ["b1:9092", "b2:9092"]
    assert s.fetch.max_bytes == 2048


def test_environment_override_errors_say_so():
    with pytest.raises(ConfigError) as err:
        loads("", env={"PIPELINE__FETCH__MAX_BYTES": "huge"})
    assert "environment" in err.value.problems[0][2]


def test_environment_override_into_a_list_needs_an_existing_index():
    text = "feeds:\n  - https://a.example/f\n  - url: https://b.example/f\n"
    s = loads(text, env={"PIPELINE__FEEDS__1__URL": "https://c.example/f"})
    assert [f.url for f in s.feeds] == ["https://a.example/f", "https://c.example/f"]
    with pytest.raises(ConfigError) as err:
        loads(text, env={"PIPELINE__FEEDS__URL": "x"})
    assert str(err.value) == ("config: feeds.url: cannot set an environment override inside a list except "
                              "by index, e.g. PIPELINE__FEEDS__0__URL")
    with pytest.raises(ConfigError) as err:
        loads(text, env={"PIPELINE__FEEDS__2__URL": "x"})
    assert err.value.problems[0][0] == "feeds.2" and "existing item" in err.value.problems[0][2]


def test_deeply_nested_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="nested too deeply"):
        loads("state_dir: " + "[" * 5000 + "]" * 5000, env={})


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path):
    cfg = tmp_path / "conf" / "p.yaml"
    cfg.parent.mkdir()
    cfg.write_text("state_dir: ../state\ntransport:\n  local:\n    path: bus.db\n")
    s = load(cfg, env={})
    assert s.state_path == (tmp_path / "state").resolve()
    assert s.resolve(s.transport.local.path) == (tmp_path / "conf" / "bus.db").resolve()


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        loads("transport: [unclosed\n")
    assert "YAML" in str(err.value)
    with pytest.raises(ConfigError):
        load(tmp_path / "missing.yaml")


def test_shipped_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "configs"
    for f in root.glob("*.yaml"):
        load(f, env={})


def test_check_config_suggests_the_key_meant(tmp_path, capsys):
    from pipeline.cli import main

    cfg = tmp_path / "p.yaml"
    cfg.write_text("observe:\n  metric_port: 9400\nfeeds:\n  - url: https://a.example/f\n    intervall: 60\n"
                   "runner:\n  log_format: json\nstatedir: x\nzzz: 1\n")
    assert main(["check-config", str(cfg)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{cfg}: observe.metric_port (line 2): unknown key; did you mean 'metrics_port'?" in out
    assert f"{cfg}: feeds.0.intervall (line 5): unknown key; did you mean 'interval'?" in out
    assert f"{cfg}: runner.log_format (line 7): unknown key; it belongs under 'observe'" in out
    assert f"{cfg}: statedir (line 8): unknown key; did you mean 'state_dir'?" in out
    assert f"{cfg}: zzz (line 9): unknown key" in out  # nothing close: no guess
