"""config.py is the one source of settings: defaults once, every variable documented in README."""

import re
from pathlib import Path

import pytest

import config


def test_every_environment_variable_is_in_the_readme_table():
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):]
    documented = set(re.findall(r"`([A-Z_]+)`", table))
    missing = set(config.ENVIRONMENT) - documented
    assert not missing, f"README's Configuration table lacks {sorted(missing)}"


def test_every_variable_sets_a_real_field():
    fields = set(config.Settings.__dataclass_fields__)
    for variable, (name, _parse) in config.ENVIRONMENT.items():
        assert name in fields, variable


def test_environment_overrides_defaults_and_bad_values_name_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("NANOORG_INSTANCE", str(tmp_path))
    monkeypatch.setenv("NANOORG_PORT", "9123")
    monkeypatch.setenv("NANOORG_SEED_DEMO", "no")
    settings = config.load_settings()
    assert settings.port == 9123 and settings.seed_demo is False
    assert settings.instance_dir == Path(tmp_path).resolve()
    assert settings.database_url == f"sqlite:///{Path(tmp_path).resolve() / 'nanoorg.sqlite'}"
    assert settings.max_upload_mb == config.Settings.__dataclass_fields__["max_upload_mb"].default
    monkeypatch.setenv("NANOORG_PORT", "eighty")
    with pytest.raises(ValueError, match="NANOORG_PORT"):
        config.load_settings()


def test_default_thinning_must_be_a_stored_target(tmp_path):
    with pytest.raises(ValueError, match="NANOORG_DEFAULT_THINNING"):
        config.load_settings(instance_dir=tmp_path, thinning_targets=(30, 100), default_thinning=50)
