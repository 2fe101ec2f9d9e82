"""campaigns.deliverability.verp: a return path names its message only under our signature."""

import uuid

import pytest

from campaigns.deliverability import verp

TOKEN = uuid.uuid4().hex


def test_a_return_path_reads_back_to_its_token_and_fits_a_local_part():
    address = verp.return_path(TOKEN, "Bounces.Shop.Example", "k1")
    local, _, domain = address.partition("@")
    assert domain == "bounces.shop.example" and len(local) <= 64
    assert verp.token_of(address, ["k1"]) == TOKEN
    # Some servers fold the case of the local part, and reports quote it in angle brackets.
    assert verp.token_of(f"<{address.upper()}>", ["k1"]) == TOKEN


def test_a_forged_or_altered_return_path_names_nothing():
    address = verp.return_path(TOKEN, "bounces.shop.example", "k1")
    other = uuid.uuid4().hex
    forged = address.replace(TOKEN, other)
    assert verp.token_of(forged, ["k1"]) is None
    assert verp.token_of(address, ["another key"]) is None
    assert verp.token_of(f"bounce+{other}-aaaaaaaaaaaaaaaa@bounces.shop.example", ["k1"]) is None
    assert verp.token_of("news@shop.example", ["k1"]) is None
    assert verp.token_of("", ["k1"]) is None


def test_mail_sent_before_a_key_rotation_still_reads_under_the_old_key():
    address = verp.return_path(TOKEN, "bounces.shop.example", "old")
    assert verp.token_of(address, ["new", "old"]) == TOKEN


def test_only_message_tokens_become_return_paths():
    with pytest.raises(ValueError):
        verp.return_path("test-send", "bounces.shop.example", "k1")
