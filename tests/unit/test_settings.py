"""Settings read from the environment: what an empty value means."""

from __future__ import annotations

import pytest

from infra.settings import Settings


def test_empty_endpoint_and_keys_mean_aws_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DYNAMODB_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(f"LEDGERFLOW_{name}", "")
    settings = Settings()
    assert settings.dynamodb_endpoint_url is None
    assert settings.aws_access_key_id is None and settings.aws_secret_access_key is None


def test_local_defaults_stay_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DYNAMODB_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(f"LEDGERFLOW_{name}", raising=False)
    settings = Settings()
    assert settings.dynamodb_endpoint_url == "http://127.0.0.1:8000"
    assert settings.aws_access_key_id == "local"
