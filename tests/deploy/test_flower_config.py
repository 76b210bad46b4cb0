"""Flower's options from the HMS settings (pure logic; the processes: test_flower_auth.py)."""

from __future__ import annotations

import pytest

from hms_celery.errors import SettingsError
from hms_celery.flower import FLOWER_CONF, flower_arguments, flower_config
from hms_celery.settings import load_settings


def test_loopback_by_default_without_auth() -> None:
    config = flower_config(load_settings(), basic_auth=[])
    assert (config.address, config.port, config.authenticated) == ("127.0.0.1", 5555, False)
    assert config.url == "http://127.0.0.1:5555/"
    assert "basic_auth" not in config.tornado_options()


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.7", "flower.example.org", ""])
def test_an_address_beyond_loopback_needs_a_password(address: str) -> None:
    settings = load_settings(flower_address=address or "127.0.0.1")
    with pytest.raises(SettingsError, match="HMS_FLOWER_PASSWORD"):
        flower_config(settings, address=address or "0.0.0.0", basic_auth=[])


def test_the_hms_password_wins_and_stays_out_of_repr_and_argv() -> None:
    settings = load_settings(flower_address="0.0.0.0", flower_password="p,w:x", flower_port=6000)
    config = flower_config(settings, basic_auth=["other:auth"])
    assert config.tornado_options() == {
        "address": "0.0.0.0",
        "port": 6000,
        "basic_auth": ["hms:p,w:x"],  # one entry: a list, never split at the comma
    }
    assert config.url == "http://127.0.0.1:6000/"
    assert "p,w:x" not in repr(config)
    assert flower_arguments(6000) == ["flower", f"--conf={FLOWER_CONF}", "--port=6000"]
    assert FLOWER_CONF.is_file()


def test_flowers_own_basic_auth_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:secret,viewer:other")
    config = flower_config(load_settings(flower_address="::"))
    assert config.basic_auth == ("ops:secret", "viewer:other")
    assert config.url == "http://[::1]:5555/"


def test_an_empty_password_is_no_password_and_a_bad_user_is_refused() -> None:
    assert load_settings(flower_password="").flower_password is None
    with pytest.raises(SettingsError, match="HMS_FLOWER_USER"):
        load_settings(flower_user="a:b")
