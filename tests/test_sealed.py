"""marketing_ai.sealed: secrets stored as Fernet tokens, opened by the configured keys only."""

import pytest

from marketing_ai import sealed


def test_a_sealed_secret_is_not_its_text_and_opens_again(settings):
    settings.MARKETING_AI_SECRETS_KEY = "a" * 40
    token = sealed.seal("hunter2-smtp-password")
    assert "hunter2" not in token and token != sealed.seal("hunter2-smtp-password")  # random IV
    assert sealed.unseal(token) == "hunter2-smtp-password"
    assert sealed.seal("") == "" and sealed.unseal("") == ""


def test_another_key_cannot_open_it_and_rotation_keeps_the_old_one_working(settings):
    settings.MARKETING_AI_SECRETS_KEY = "old-" + "o" * 40
    token = sealed.seal("api-key-123")
    settings.MARKETING_AI_SECRETS_KEY = "new-" + "n" * 40
    with pytest.raises(sealed.Unsealable):
        sealed.unseal(token)
    settings.MARKETING_AI_SECRETS_KEY = "new-" + "n" * 40 + ",old-" + "o" * 40
    assert sealed.unseal(token) == "api-key-123"
    assert sealed.unseal(sealed.seal("x")) == "x"


def test_without_a_key_it_is_derived_from_secret_key(settings):
    settings.MARKETING_AI_SECRETS_KEY = ""
    token = sealed.seal("pw")
    assert sealed.unseal(token) == "pw"
    settings.SECRET_KEY = "another-" + "z" * 50
    with pytest.raises(sealed.Unsealable):
        sealed.unseal(token)
