"""Encryption of tokens at rest (Fernet)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["DecryptionFailed", "TokenCipher", "generate_key"]


class DecryptionFailed(ValueError):
    """A stored value could not be decrypted with the configured key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class TokenCipher:
    """Encrypts and decrypts token strings.

    cipher = TokenCipher(settings.secret("token_encryption_key"))
    stored = cipher.encrypt("refresh-token")
    cipher.decrypt(stored) == "refresh-token"
    """

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed("stored token cannot be decrypted: wrong TOKEN_ENCRYPTION_KEY?") from exc
