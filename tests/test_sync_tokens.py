"""Site keys and signed tokens: what one site signs, every site can verify, and nobody can alter or forge."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.sync import identity, tokens
from appliance.sync.b64 import b64u, unb64u
from appliance.sync.identity import BadKey, PublicKey, SigningKey

BER = identity.generate("BER")
WAW = identity.generate("WAW")
REGISTRY = {BER.kid: BER.public, WAW.kid: WAW.public}
BODY = json.dumps({"v": 1, "origin": "BER", "seq": 1, "kind": "ship", "sku": "DOG-5", "note": "Żółw ü"},
                  ensure_ascii=False).encode()


def test_a_key_file_round_trips_with_mode_0600_and_is_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "site.key"
    identity.write_key_file(BER, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = identity.read_key_file(path)
    assert loaded.kid == "BER#1" and loaded.public == BER.public
    with pytest.raises(FileExistsError):
        identity.write_key_file(identity.generate("BER"), path)
    assert identity.read_key_file(path).public == BER.public


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "site.key"
    identity.write_key_file(BER, path)
    os.chmod(path, 0o644)
    with pytest.raises(BadKey, match="chmod 600"):
        identity.read_key_file(path)


@pytest.mark.parametrize("content, reason", [
    ("not json", "not a site key file"),
    ('{"site": "BER", "kid": "BER#1"}', "not a site key file"),
    ('{"site": "BER", "kid": "ber-1", "ed25519_private": "AAAA"}', "must look like BER#1"),
    ('{"site": "WAW", "kid": "BER#1", "ed25519_private": "AAAA"}', "does not match"),
    ('{"site": "BER", "kid": "BER#1", "ed25519_private": "AA=A"}', "base64url"),
    ('{"site": "BER", "kid": "BER#1", "ed25519_private": "AAAA"}', "has 3 bytes"),
])
def test_a_broken_key_file_says_what_is_wrong(tmp_path, content, reason):
    path = tmp_path / "site.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(BadKey, match=reason):
        identity.read_key_file(path)


def test_a_missing_key_file_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(BadKey, match="appliance init"):
        identity.read_key_file(tmp_path / "none.key")


def test_public_keys_travel_as_text():
    text = BER.public.text()
    assert text.startswith("ed25519:") and len(text) == len("ed25519:") + 43
    assert PublicKey.parse("BER#1", text) == BER.public
    for kid, bad in (("BER#1", "rsa:AAAA"), ("BER#1", "ed25519:AAAA"), ("BER#1", "ed25519:!!"), ("ber", text)):
        with pytest.raises(BadKey):
            PublicKey.parse(kid, bad)


def test_a_signed_token_opens_with_the_registry_and_carries_the_exact_bytes():
    token = tokens.sign(BODY, BER)
    assert tokens.open_token(token, REGISTRY) == ("BER#1", BODY)
    assert tokens.sign(BODY, BER, header=tokens.header_for(BER.kid)) == token  # Ed25519 is deterministic
    assert len(tokens.token_hash(token)) == 43 and tokens.token_hash(token) != tokens.token_hash(tokens.sign(b"{}", BER))


def _swap_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize("forge, reason", [
    (lambda t: _swap_part(t, 1, b64u(BODY.replace(b'"ship"', b'"receive"'))), "does not verify"),
    (lambda t: _swap_part(t, 2, b64u(b"\0" * 64)), "does not verify"),
    (lambda t: _swap_part(t, 0, tokens.header_for("WAW#1")), "does not verify"),   # another site's kid
    (lambda t: _swap_part(t, 0, tokens.header_for("PAR#1")), "unknown key"),
    (lambda t: _swap_part(t, 0, b64u(b'{"alg":"none","kid":"BER#1"}')), "EdDSA"),
    (lambda t: t + ".x", "3 dot-separated parts"),
    (lambda t: _swap_part(t, 1, "%%%"), "base64url"),
    (lambda t: "", "non-empty"),
])
def test_altered_or_forged_tokens_are_refused(forge, reason):
    with pytest.raises(tokens.BadToken, match=reason):
        tokens.open_token(forge(tokens.sign(BODY, BER)), REGISTRY)


def test_a_key_with_the_right_kid_but_not_the_registered_key_cannot_sign_for_the_site():
    impostor = identity.generate("BER")
    with pytest.raises(tokens.BadToken, match="does not verify"):
        tokens.open_token(tokens.sign(BODY, impostor), REGISTRY)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(max_size=60),
                                                  st.text(max_size=60), st.text(max_size=60))))
def test_garbage_never_raises_anything_but_bad_token(text):
    with pytest.raises(tokens.BadToken):
        tokens.open_token(text, REGISTRY)


@given(st.binary(max_size=100))
def test_base64url_round_trips(data):
    assert unb64u(b64u(data)) == data


def test_the_public_text_never_contains_the_private_key():
    # The public text never contains the private key bytes.
    private = json.loads(BER.to_json())["ed25519_private"]
    assert private not in BER.public.text()
    assert SigningKey.from_json(BER.to_json()).public == BER.public
