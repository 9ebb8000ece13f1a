"""Password hashing, API token keys and encryption of secrets at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from imap2api.config import settings

# scrypt parameters: ~50 ms per check on this class of machine, 16 MiB of memory.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """Hash a password with scrypt and a random salt, in a self-describing string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a hash made by ``hash_password``."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def new_token_key() -> str:
    """A fresh API token key: 40 hex characters, as Django REST Framework issues."""
    return secrets.token_hex(20)


def hash_token_key(key: str) -> str:
    """The stored form of a token key (tokens are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    """A Fernet cipher whose key is derived from the service's secret key."""
    derived = hashlib.sha256(b"imap2api-fernet:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


class DecryptionError(Exception):
    """Raised when a stored secret cannot be decrypted (the secret key changed)."""


def encrypt_secret(plain: str) -> str:
    """Encrypt a secret (an IMAP password, a webhook key) for storage."""
    return _fernet(settings.resolved_secret_key).encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    """Decrypt a secret stored by ``encrypt_secret``."""
    try:
        return _fernet(settings.resolved_secret_key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted: was IMAP2API_SECRET_KEY changed?") from exc
