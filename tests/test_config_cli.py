"""Settings and the `kiennghi` command: a bad setting is one clear line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings


def kiennghi(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot.cli` with only these settings in a clean environment, in tmp_path."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path}/kiennghi.db", **settings}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input="", capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60)


def assert_refused(result: subprocess.CompletedProcess[str], setting: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("setting", "value"), [
    ("DEFAULT_LOCALE", "fr"), ("TIMEZONE", "Mars/Olympus_Mons"), ("TIMEZONE", "../../etc/passwd"),
    ("FLOOD_MESSAGES", "0"), ("DATABASE_URL", "mysql://root@localhost/kn"), ("ADMIN_IDS", "12345"),
])
def test_invalid_setting_exits_2_naming_it(tmp_path: Path, setting: str, value: str) -> None:
    assert_refused(kiennghi(tmp_path, "shell", **{setting: value}), setting)


def test_run_without_a_token_exits_2_naming_telegram_bot_token(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "run")
    assert_refused(result, "TELEGRAM_BOT_TOKEN")
    assert not (tmp_path / "kiennghi.db").exists()  # refused before touching anything


def test_run_with_an_empty_token_exits_2_naming_telegram_bot_token(tmp_path: Path) -> None:
    assert_refused(kiennghi(tmp_path, "run", TELEGRAM_BOT_TOKEN=""), "TELEGRAM_BOT_TOKEN")


def test_run_without_any_messenger_names_both_tokens_in_one_line(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "run", TELEGRAM_BOT_TOKEN="", ZALO_BOT_TOKEN=" ")
    assert_refused(result, "TELEGRAM_BOT_TOKEN")
    assert "ZALO_BOT_TOKEN" in result.stderr
    assert not (tmp_path / "kiennghi.db").exists()


def test_a_short_zalo_webhook_secret_exits_2_naming_it(tmp_path: Path) -> None:
    assert_refused(kiennghi(tmp_path, "shell", ZALO_WEBHOOK_SECRET="short"), "ZALO_WEBHOOK_SECRET")


def test_missing_reference_file_exits_2_naming_it(tmp_path: Path) -> None:
    assert_refused(kiennghi(tmp_path, "shell", REFERENCE_FILE=str(tmp_path / "missing.toml")),
                   "REFERENCE_FILE")


def test_malformed_reference_file_exits_2_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[category]]\ncode = "wages"\n', encoding="utf-8")  # no vi, no en
    assert_refused(kiennghi(tmp_path, "shell", REFERENCE_FILE=str(broken)), "REFERENCE_FILE")


def test_dotenv_in_the_working_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DEFAULT_LOCALE=de\n", encoding="utf-8")
    assert_refused(kiennghi(tmp_path, "shell"), "DEFAULT_LOCALE")


def test_valid_settings_start_the_shell(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "shell", DEFAULT_LOCALE="en", TIMEZONE="Asia/Bangkok")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_settings_error_message_is_one_line_naming_the_setting() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, timezone="Nowhere/Town")
    assert str(caught.value).startswith("Invalid setting TIMEZONE")
    assert "\n" not in str(caught.value)
    with pytest.raises(SettingsError, match="DEFAULT_LOCALE"):
        load_settings(_env_file=None, default_locale="fr")


def test_settings_read_from_a_mapping_of_values() -> None:
    settings = load_settings(_env_file=None, admin_ids="telegram:1, zalo:2", flood_messages="7",
                             timezone="Asia/Ho_Chi_Minh")
    assert settings.admin_ids == ["telegram:1", "zalo:2"]
    assert settings.flood_messages == 7
    assert settings.zone.key == "Asia/Ho_Chi_Minh"
