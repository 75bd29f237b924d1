"""A token credential for the emulator: it never signs in, the emulator accepts any bearer token."""

from __future__ import annotations

import time

from azure.core.credentials import AccessToken, AccessTokenInfo


class StaticTokenCredential:
    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken("emulator-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options=None) -> AccessTokenInfo:
        return AccessTokenInfo("emulator-token", int(time.time()) + 3600)
