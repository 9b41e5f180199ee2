"""The ``diff {}`` section of specgate.conf: every documented key, and loud errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from specgate.core.versions import Version
from specgate_codegen.diff import config
from specgate_codegen.diff.config import ConfigError
from specgate_codegen.diff.settings import DiffSettings

FULL = """
diff {
  rules_version = 1
  fail_on = dangerous
  released_max = "2.31"
  release_lock = "specgate.release.lock.json"
  draft_versions = ["999.0", "998.0"]
  unknown_request_fields = reject
  apply_request_defaults = false
  formats_enforced = true
  internal_cap = info
  strict_versions = true
  deprecation { min_days = 30 }
  waivers = ".specgate/waivers.conf"
  max_waiver_days = 90
  levels {
    "resp.enum.value-added" = breaking
    "req.pattern.changed" = off
  }
}
"""


def load_text(tmp_path: Path, text: str, name: str = "specgate.conf") -> DiffSettings:
    path = tmp_path / name
    path.write_text(text)
    return config.load(path)


def errors_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, f"diff {{\n{body}\n}}\n")
    return e.value.messages


def test_every_documented_key(tmp_path):
    s = load_text(tmp_path, FULL)
    assert s.fail_on == "dangerous"
    assert s.released_max == Version(2, 31)
    assert s.release_lock == str(tmp_path / "specgate.release.lock.json")
    assert s.draft_versions == ("999.0", "998.0")
    assert s.unknown_request_fields == "reject"
    assert s.apply_request_defaults is False
    assert s.formats_enforced is True
    assert s.internal_cap == "info"
    assert s.strict_versions is True
    assert s.deprecation_min_days == 30
    assert s.waivers == str(tmp_path / ".specgate/waivers.conf")
    assert s.max_waiver_days == 90
    assert s.levels == {"resp.enum.value-added": "breaking", "req.pattern.changed": "off"}


def test_no_diff_section_gives_defaults(tmp_path):
    assert load_text(tmp_path, "other { x = 1 }\n") == DiffSettings()
    assert load_text(tmp_path, "diff {}\n") == DiffSettings()


def test_json_config_and_dotted_deprecation_key(tmp_path):
    s = load_text(tmp_path, '{"diff": {"deprecation.min_days": 7, "waivers": "/abs/w.conf"}}', "specgate.json")
    assert s.deprecation_min_days == 7
    assert s.waivers == "/abs/w.conf"


def test_unquoted_dotted_rule_ids_are_flattened(tmp_path):
    s = load_text(tmp_path, "diff { levels { resp.enum.value-added = breaking } }\n")
    assert s.levels == {"resp.enum.value-added": "breaking"}


def test_rules_version_must_be_1(tmp_path):
    assert any("rules_version" in m for m in errors_of(tmp_path, "rules_version = 2"))


@pytest.mark.parametrize(
    "body, needle",
    [
        ("fail_on = fatal", "diff.fail_on: must be one of info, safe, dangerous, breaking, none"),
        ("released_max = 2.31", "quoted version key"),
        ('released_max = "2.x"', "not MAJOR.MINOR"),
        ('draft_versions = "999.0"', "must be a list"),
        ("unknown_request_fields = strict", "ignore, reject"),
        ('strict_versions = "yes"', "true or false"),
        ("internal_cap = safe", "dangerous, info, none"),
        ("deprecation { min_days = -1 }", "must not be negative"),
        ("max_waiver_days = true", "whole number"),
        ("fail_onn = breaking", "diff.fail_onn: unknown key"),
        ('levels { "resp.enum.value-addded" = breaking }', "unknown rule id 'resp.enum.value-addded'"),
        ('levels { "resp.enum.value-added" = fatal }', "'fatal' is not one of"),
        ("levels = [1]", "must be an object"),
    ],
)
def test_invalid_values_are_errors(tmp_path, body, needle):
    messages = errors_of(tmp_path, body)
    assert len(messages) == 1 and needle in messages[0], messages
    assert messages[0].startswith(str(tmp_path / "specgate.conf"))


def test_all_problems_reported_at_once(tmp_path):
    messages = errors_of(tmp_path, 'fail_on = x\nbogus = 1\nlevels { "no.such" = off }\nrules_version = 3')
    assert len(messages) == 4


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.conf")
    with pytest.raises(ConfigError, match="cannot read"):
        load_text(tmp_path, "diff { fail_on = \n")
    with pytest.raises(ConfigError, match="diff must be an object"):
        load_text(tmp_path, "diff = 3\n")
