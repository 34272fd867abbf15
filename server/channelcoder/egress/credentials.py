"""The credentials stay on the host: the sandbox gets placeholders, the proxy puts the real ones in.

Inside the sandbox every credential variable is a placeholder (`sandbox_env()`), and a host
login becomes a placeholder `.credentials.json` (`sandbox_credentials_file()`). On the API
route the proxy replaces an `x-api-key` or `authorization: Bearer` header whose value is a
placeholder with the real value (`Credentials.substitute`); any other value passes unchanged.

A host login (`$CLAUDE_CONFIG_DIR/.credentials.json`, else `~/.claude/.credentials.json`, field
`claudeAiOauth`) is read on the host for every request, so a new `/login` on the host is used at
once. A token that expires within five minutes (the pinned CLI's own margin) is refreshed here,
the way the CLI refreshes it: `POST` JSON `{grant_type: "refresh_token", refresh_token,
client_id, scope}` to its token endpoint; the answer's `access_token`, `refresh_token` (else the
old one) and `expires_in` (seconds) are written back to the host file atomically, mode 0600.

The placeholder file carries no refresh token and an `expiresAt` far in the future: the CLI
then never tries to refresh by itself (it refreshes only a token within five minutes of its
`expiresAt`, and only with a refresh token).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ..errors import ChannelCoderError
from ..redact import register_secret
from ..state import atomic_write

API_KEY_PLACEHOLDER = "sk-ant-api03-channelcoder-placeholder-the-key-stays-on-the-host"
OAUTH_PLACEHOLDER = "sk-ant-oat01-channelcoder-placeholder-the-token-stays-on-the-host"
AUTH_TOKEN_PLACEHOLDER = "channelcoder-placeholder-the-auth-token-stays-on-the-host"
LOGIN_PLACEHOLDER = "sk-ant-oat01-channelcoder-placeholder-the-login-stays-on-the-host"
PLACEHOLDERS = (API_KEY_PLACEHOLDER, OAUTH_PLACEHOLDER, AUTH_TOKEN_PLACEHOLDER, LOGIN_PLACEHOLDER)

CREDENTIALS_FILE = ".credentials.json"
TOKEN_URL = "https://platform.claude.com/v1/oauth/token"
TOKEN_URL_ENV = "CHANNELCODER_OAUTH_TOKEN_URL"
CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
DEFAULT_SCOPES = ("user:profile", "user:inference", "user:sessions:claude_code",
                  "user:mcp_servers", "user:file_upload")
REFRESH_MARGIN_MS = 300_000
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01


class LoginRefreshFailed(ChannelCoderError):
    code = "auth"
    default_hint = "run 'claude' on this machine and /login again"


def login_path(env: Mapping[str, str]) -> Path:
    base = env.get("CLAUDE_CONFIG_DIR") or str(Path(env.get("HOME") or Path.home()) / ".claude")
    return Path(base).expanduser() / CREDENTIALS_FILE


@dataclass
class HostLogin:
    """The host's Claude login file; the proxy reads (and refreshes) it, the sandbox never."""

    path: Path
    token_url: str = TOKEN_URL
    _lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)

    def read(self) -> dict[str, Any]:
        """The `claudeAiOauth` record, or {} when the file has none."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
        if not isinstance(oauth, dict):
            return {}
        for name in ("accessToken", "refreshToken"):
            register_secret(oauth.get(name) if isinstance(oauth.get(name), str) else None)
        return oauth

    async def access_token(self) -> str:
        """A token valid for at least five more minutes, refreshed on the host when needed."""
        oauth = self.read()
        if _fresh(oauth):
            return str(oauth["accessToken"])
        async with self._lock:
            oauth = self.read()  # another request may have refreshed it meanwhile
            if _fresh(oauth):
                return str(oauth["accessToken"])
            try:
                refreshed = await anyio.to_thread.run_sync(self._refresh, oauth)
            except LoginRefreshFailed:
                # Another process (the host's own claude, another channelcoder) may have
                # refreshed it first and so spent the refresh token this one used.
                oauth = self.read()
                if _fresh(oauth):
                    return str(oauth["accessToken"])
                raise
            return str(refreshed["accessToken"])

    def _refresh(self, oauth: dict[str, Any]) -> dict[str, Any]:
        refresh_token = oauth.get("refreshToken")
        if not isinstance(refresh_token, str) or not refresh_token:
            if isinstance(oauth.get("accessToken"), str) and oauth["accessToken"]:
                return oauth  # nothing to refresh with: the upstream decides
            raise LoginRefreshFailed(f"{self.path} holds no Claude login")
        stored = [s for s in oauth.get("scopes") or [] if isinstance(s, str)]
        client_id = oauth.get("clientId")
        scopes = stored if client_id else list(dict.fromkeys([*DEFAULT_SCOPES, *stored]))
        import urllib.error  # only here: a refresh is rare, and this is 20 ms of start-up
        import urllib.request

        body = json.dumps({"grant_type": "refresh_token", "refresh_token": refresh_token,
                           "client_id": client_id or CLIENT_ID, "scope": " ".join(scopes)})
        request = urllib.request.Request(self.token_url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise LoginRefreshFailed(
                f"refreshing the Claude login failed: HTTP {exc.code} from the token endpoint"
            ) from None
        except (OSError, ValueError) as exc:
            raise LoginRefreshFailed(
                f"refreshing the Claude login failed: {type(exc).__name__}",
                hint="check this machine's network, or /login again") from None
        access = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(access, str) or not access:
            raise LoginRefreshFailed("the token endpoint's answer holds no access token")
        register_secret(access)
        new_refresh = answer.get("refresh_token") or refresh_token
        register_secret(new_refresh)
        expires_in = answer.get("expires_in")
        updated = {**oauth, "accessToken": access, "refreshToken": new_refresh,
                   "expiresAt": int(time.time() * 1000 + float(expires_in or 3600) * 1000)}
        if isinstance(answer.get("scope"), str):
            updated["scopes"] = answer["scope"].split()
        self._write_back(refresh_token, updated)
        return updated

    def _write_back(self, used_refresh_token: str, oauth: dict[str, Any]) -> None:
        """Write the refreshed record, unless the user logged in again meanwhile."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        current = data.get("claudeAiOauth")
        if isinstance(current, dict) and current.get("refreshToken") not in (None,
                                                                             used_refresh_token):
            return
        data["claudeAiOauth"] = oauth
        atomic_write(self.path, json.dumps(data), mode=0o600)


def _fresh(oauth: Mapping[str, Any]) -> bool:
    token, expires = oauth.get("accessToken"), oauth.get("expiresAt")
    if not isinstance(token, str) or not token:
        return False
    if not isinstance(expires, int | float):
        return True
    return time.time() * 1000 + REFRESH_MARGIN_MS < expires


@dataclass
class Credentials:
    """The real credentials on the host, and what the sandbox gets instead."""

    api_key: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    auth_token: str | None = field(default=None, repr=False)
    login: HostLogin | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """The environment's credentials; a host login only when the environment has none."""
        env = os.environ if env is None else env
        found = cls(api_key=env.get("ANTHROPIC_API_KEY") or None,
                    oauth_token=env.get("CLAUDE_CODE_OAUTH_TOKEN") or None,
                    auth_token=env.get("ANTHROPIC_AUTH_TOKEN") or None)
        for value in (found.api_key, found.oauth_token, found.auth_token):
            register_secret(value)
        if not (found.api_key or found.oauth_token or found.auth_token):
            path = login_path(env)
            if path.is_file():
                found.login = HostLogin(path, env.get(TOKEN_URL_ENV) or TOKEN_URL)
        return found

    def sandbox_env(self) -> dict[str, str]:
        """The credential variables the sandbox gets: a placeholder for each one set here."""
        out: dict[str, str] = {}
        if self.api_key:
            out["ANTHROPIC_API_KEY"] = API_KEY_PLACEHOLDER
        if self.oauth_token:
            out["CLAUDE_CODE_OAUTH_TOKEN"] = OAUTH_PLACEHOLDER
        if self.auth_token:
            out["ANTHROPIC_AUTH_TOKEN"] = AUTH_TOKEN_PLACEHOLDER
        return out

    def sandbox_credentials_file(self) -> str | None:
        """The `.credentials.json` for the sandbox's config dir (a host login only), or None.

        No refresh token and an `expiresAt` in 2100: the CLI inside never refreshes by itself.
        The scopes and subscription type are copied (they are not secret; the CLI reads them).
        """
        if self.login is None:
            return None
        oauth = self.login.read()
        record: dict[str, Any] = {"accessToken": LOGIN_PLACEHOLDER, "expiresAt": FAR_FUTURE_MS,
                                  "scopes": oauth.get("scopes") or list(DEFAULT_SCOPES)}
        for name in ("subscriptionType", "rateLimitTier"):
            if name in oauth:
                record[name] = oauth[name]
        return json.dumps({"claudeAiOauth": record})

    async def substitute(self, name: str, value: str) -> str:
        """The value to send upstream for header `name` (lower case) that the sandbox sent."""
        if name == "x-api-key":
            if value == API_KEY_PLACEHOLDER and self.api_key:
                return self.api_key
            return value
        if name != "authorization" or value[:7].lower() != "bearer ":
            return value
        token = value[7:].strip()
        if token == OAUTH_PLACEHOLDER and self.oauth_token:
            return f"Bearer {self.oauth_token}"
        if token == AUTH_TOKEN_PLACEHOLDER and self.auth_token:
            return f"Bearer {self.auth_token}"
        if token == LOGIN_PLACEHOLDER and self.login is not None:
            return f"Bearer {await self.login.access_token()}"
        return value

    def describe(self) -> str:
        """Which credential the proxy adds (never its value)."""
        names = [n for n, v in (("ANTHROPIC_API_KEY", self.api_key),
                                ("CLAUDE_CODE_OAUTH_TOKEN", self.oauth_token),
                                ("ANTHROPIC_AUTH_TOKEN", self.auth_token)) if v]
        if self.login is not None:
            names.append(f"the login in {self.login.path}")
        return ", ".join(names) or "none"
