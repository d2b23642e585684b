from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from runtime.crypto import DecryptionFailed, TokenCipher, generate_key


class TestTokenCipher:
    def test_round_trip_hides_the_plaintext(self) -> None:
        cipher = TokenCipher(generate_key())
        stored = cipher.encrypt("refresh!token-value")
        assert "refresh!token-value" not in stored
        assert cipher.decrypt(stored) == "refresh!token-value"

    def test_wrong_key_is_a_clear_error(self) -> None:
        stored = TokenCipher(generate_key()).encrypt("value")
        with pytest.raises(DecryptionFailed, match="TOKEN_ENCRYPTION_KEY"):
            TokenCipher(generate_key()).decrypt(stored)


class TestKeyList:
    def test_the_first_key_encrypts_and_every_key_decrypts(self) -> None:
        new, old = generate_key(), generate_key()
        stored_under_old = TokenCipher(old).encrypt("token")
        assert Fernet(old.encode()).decrypt(stored_under_old.encode()) == b"token"  # one key: plain Fernet, as before
        cipher = TokenCipher(f"{new}, {old}")
        assert cipher.key_count == 2
        assert cipher.decrypt(stored_under_old) == "token"
        assert TokenCipher(new).decrypt(cipher.encrypt("token")) == "token"
        assert not cipher.is_current(stored_under_old)
        rotated = cipher.rotate(stored_under_old)
        assert cipher.is_current(rotated)
        assert TokenCipher(new).decrypt(rotated) == "token"

    def test_a_token_no_key_opens_cannot_be_rotated(self) -> None:
        stored = TokenCipher(generate_key()).encrypt("token")
        with pytest.raises(DecryptionFailed):
            TokenCipher(f"{generate_key()},{generate_key()}").rotate(stored)

    @pytest.mark.parametrize("keys", [pytest.param("", id="empty"), pytest.param(" , ", id="commas")])
    def test_no_key_is_an_error(self, keys: str) -> None:
        with pytest.raises(ValueError, match="no key"):
            TokenCipher(keys)

    def test_a_malformed_key_is_named_by_position_not_shown(self) -> None:
        with pytest.raises(ValueError, match="key 2 of 2") as info:
            TokenCipher(f"{generate_key()},not-a-key-but-secret")
        assert "not-a-key-but-secret" not in str(info.value)
        assert info.value.__cause__ is None
