"""Pseudonymous keys and encrypted chat identities.

Both keys are derived with HKDF-SHA256 from ``settings.master_secret()``, each with its own
``info`` label, so the pseudonymisation key and the encryption key are independent: knowing
one (say, from a leaked export of keys) says nothing of the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
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

    def key(self, channel: str, user_id: str) -> str:
        message = f"{channel}:{user_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


class ChatCipher:
    """Encrypts what is needed to answer a participant (their chat id) with Fernet."""

    def __init__(self, settings: Settings) -> None:
        key = derive_key(settings.master_secret(), CHAT_CIPHER_INFO)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        """The clear value; raises ``cryptography.fernet.InvalidToken`` if tampered with."""
        return self._fernet.decrypt(token).decode()
