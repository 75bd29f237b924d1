"""A token credential for the emulator: it never signs in, the emulator accepts any bearer token."""

from __future__ import annotations

import time

from azure.core.credentials import AccessToken, AccessTokenInfo


class StaticTokenCredential:
    """Always the same bearer token; ``emulator.authorization.sign_in(token, principal)`` says whose it is."""

    def __init__(self, token: str = "emulator-token") -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options=None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)
