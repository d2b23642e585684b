from __future__ import annotations

import pytest

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
