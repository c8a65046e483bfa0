"""Pseudonymous keys and encrypted chat identities.

Both keys are derived with HKDF-SHA256 from ``settings.master_secret()``, each with its own
``info`` label, so the pseudonymisation key and the encryption key are independent: knowing
one (say, from a leaked export of keys) says nothing of the other.

Rotation (``storage.keys``): with ``settings.previous_secret_keys``, the cipher still decrypts
what an older secret encrypted (``MultiFernet``) and encrypts with the current one; the
pseudonymiser tells the keys a citizen had under the older secrets, so they can be re-keyed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.settings import Settings

PSEUDONYM_INFO = b"cnr-sante-bot/participant-key/v1"
CHAT_CIPHER_INFO = b"cnr-sante-bot/chat-identity/v1"
_SALT = b"cnr-sante-bot"


def derive_key(master: bytes, info: bytes, length: int = 32) -> bytes:
    """A key of ``length`` bytes for the purpose named by ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(master)


class Pseudonymiser:
    """``key(channel, user_id)``: hex HMAC-SHA256 of ``"channel:user_id"``; never reversible."""

    def __init__(self, settings: Settings) -> None:
        self._key = derive_key(settings.master_secret(), PSEUDONYM_INFO)
        self._previous = [
            derive_key(old, PSEUDONYM_INFO) for old in settings.previous_master_secrets()
        ]

    def key(self, channel: str, user_id: str) -> str:
        return _hmac(self._key, channel, user_id)

    @property
    def rotating(self) -> bool:
        """Whether older secrets are still configured (citizens may need re-keying)."""
        return bool(self._previous)

    def previous_keys(self, channel: str, user_id: str) -> list[str]:
        """The keys this citizen had under the older secrets (newest first)."""
        return [_hmac(key, channel, user_id) for key in self._previous]


def _hmac(key: bytes, channel: str, user_id: str) -> str:
    return hmac.new(key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()


class ChatCipher:
    """Encrypts what is needed to answer a participant (their chat id) with Fernet."""

    def __init__(self, settings: Settings) -> None:
        secrets = [settings.master_secret(), *settings.previous_master_secrets()]
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(derive_key(s, CHAT_CIPHER_INFO))) for s in secrets]
        )

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        """The clear value; raises ``cryptography.fernet.InvalidToken`` if tampered with."""
        return self._fernet.decrypt(token).decode()

    def rotate(self, token: bytes) -> bytes:
        """``token`` encrypted again with the current secret (same clear value)."""
        return self._fernet.rotate(token)
