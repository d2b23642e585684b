"""Encryption of tokens at rest (Fernet), with keys that can be rotated (MultiFernet)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["DecryptionFailed", "InvalidKey", "TokenCipher", "generate_key"]


class DecryptionFailed(ValueError):
    """A stored value could not be decrypted with the configured key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class InvalidKey(ValueError):
    """TOKEN_ENCRYPTION_KEY is empty or one of its keys is not a Fernet key; the message never holds a key."""


class TokenCipher:
    """Encrypts token strings with the first of a comma-separated list of keys, and decrypts with any of them.

    cipher = TokenCipher(settings.secret("token_encryption_key"))   # "NEW" or "NEW,OLD"
    stored = cipher.encrypt("refresh-token")
    cipher.decrypt(stored) == "refresh-token"
    cipher.rotate(stored_under_old)        # the same plaintext, encrypted with NEW
    """

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise InvalidKey("TOKEN_ENCRYPTION_KEY holds no key")
        self._fernets = [_fernet(part, n, len(parts)) for n, part in enumerate(parts, 1)]
        self._multi = MultiFernet(self._fernets)

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._multi.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed("stored token cannot be decrypted: wrong TOKEN_ENCRYPTION_KEY?") from exc

    def is_current(self, ciphertext: str) -> bool:
        """True when the first key decrypts `ciphertext`: rotating it would change nothing."""
        try:
            self._fernets[0].decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """`ciphertext` re-encrypted with the first key; raises `DecryptionFailed` when no key opens it."""
        try:
            return self._multi.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed("stored token cannot be decrypted: wrong TOKEN_ENCRYPTION_KEY?") from exc


def _fernet(key: str, n: int, total: int) -> Fernet:
    try:
        return Fernet(key.encode())
    except ValueError:
        # The base64 error beneath adds nothing a reader needs.
        raise InvalidKey(
            f"TOKEN_ENCRYPTION_KEY: key {n} of {total} is not a Fernet key (32 url-safe base64 bytes)"
        ) from None
