"""``LUCIA_OAUTH_PROVIDERS`` parsed and checked (DESIGN §14): the presets (GitHub, Google,
any OpenID Connect provider), each provider's options, and the app's Authlib registry
(``app.extensions["lucia_oauth"]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from flask import (
    current_app,
)
from werkzeug.exceptions import NotFound

from flask_lucia.config import to_ms

#: What ``pip install`` brings the OAuth support.
INSTALL_HINT = 'pip install "flask-lucia[oauth]"'
_AUTHLIB_STATE = "authlib.integrations.flask_client"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

Kind = Literal["oidc", "github"]

#: The presets: what GitHub and Google need besides a client id and secret. Every
#: value can be overridden per app (``api_base_url`` and the URLs too, for tests).
PRESETS: dict[str, dict[str, Any]] = {
    "github": {
        "kind": "github",
        "label": "GitHub",
        "scope": "read:user user:email",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "access_token_url": "https://github.com/login/oauth/access_token",
        "api_base_url": "https://api.github.com/",
        "token_endpoint_auth_method": "client_secret_post",
    },
    "google": {
        "kind": "oidc",
        "label": "Google",
        "scope": "openid email profile",
        "server_metadata_url": "https://accounts.google.com/.well-known/openid-configuration",
    },
}
_GENERIC: dict[str, Any] = {"kind": "oidc", "scope": "openid email profile"}
_COMMON_KEYS = frozenset(
    {
        "client_id",
        "client_secret",
        "label",
        "scope",
        "authorize_params",
        "token_endpoint_auth_method",
    }
)
_KEYS: dict[str, frozenset[str]] = {
    "oidc": _COMMON_KEYS | {"server_metadata_url"},
    "github": _COMMON_KEYS | {"authorize_url", "access_token_url", "api_base_url"},
}
_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class Profile(TypedDict):
    """Who the provider says signed in, the same shape for every provider."""

    sub: str  #: the provider's stable id of the account: GitHub's numeric id, the OIDC ``sub``
    email: str | None
    email_verified: bool  #: True only when the provider vouches for ``email``
    name: str | None
    username: str | None  #: GitHub's login, the OIDC ``preferred_username``
    picture: str | None
    raw: dict[str, Any]  #: what the provider answered, as it answered it


#: ``Lucia(oauth_user_data=fn)``: the user data of a user created by a provider sign-in.
UserDataFunction = Callable[[str, Profile], Mapping[str, Any]]


@dataclass(frozen=True)
class Provider:
    """One configured provider, checked at ``init_app``."""

    name: str
    kind: Kind
    label: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    token_endpoint_auth_method: str = "client_secret_basic"
    server_metadata_url: str | None = None
    authorize_url: str | None = None
    access_token_url: str | None = None
    api_base_url: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthSettings:
    """``LUCIA_OAUTH_*``, parsed: the providers, the email-linking rule, the timeout."""

    providers: Mapping[str, Provider]
    link_verified_email: bool
    timeout: float  # seconds, for each request to a provider

    @classmethod
    def from_config(cls, config: Mapping[str, Any], password_provider: str) -> OAuthSettings:
        """Check the ``LUCIA_OAUTH_*`` keys; a bad provider is refused, named."""
        raw = config["LUCIA_OAUTH_PROVIDERS"]
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise TypeError("LUCIA_OAUTH_PROVIDERS must be a dict of provider name -> settings")
        providers = {
            name: _provider(name, options, password_provider) for name, options in raw.items()
        }
        link = config["LUCIA_OAUTH_LINK_VERIFIED_EMAIL"]
        if not isinstance(link, bool):
            raise TypeError(f"LUCIA_OAUTH_LINK_VERIFIED_EMAIL must be True or False, not {link!r}")
        timeout = to_ms(config["LUCIA_OAUTH_TIMEOUT"], "LUCIA_OAUTH_TIMEOUT") / 1000
        if timeout <= 0:
            raise ValueError("LUCIA_OAUTH_TIMEOUT must be more than zero")
        return cls(providers, link, timeout)


def _provider(name: object, options: object, password_provider: str) -> Provider:
    """One entry of ``LUCIA_OAUTH_PROVIDERS``: a preset's values under the app's own."""
    where = f"LUCIA_OAUTH_PROVIDERS[{name!r}]"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: a provider name is 1-32 of a-z, 0-9, '-', '_'")
    if name == password_provider:
        raise ValueError(f"{where}: {name!r} is LUCIA_PASSWORD_PROVIDER, the password provider")
    if not isinstance(options, Mapping):
        raise TypeError(f"{where} must be a dict with client_id and client_secret")
    values = {**PRESETS.get(name, _GENERIC), **options}
    kind: Kind = values.pop("kind")
    unknown = sorted(str(key) for key in options if key not in _KEYS[kind])
    if unknown:
        known = ", ".join(sorted(_KEYS[kind]))
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (known: {known})")
    for key in ("client_id", "client_secret"):
        if not isinstance(values.get(key), str) or not values[key]:
            raise ValueError(f"{where} is missing its {key}")
    if kind == "oidc" and not values.get("server_metadata_url"):
        raise ValueError(
            f"{where} needs a server_metadata_url (the provider's "
            "/.well-known/openid-configuration); only github and google are presets"
        )
    for key in ("server_metadata_url", "authorize_url", "access_token_url", "api_base_url"):
        url = values.get(key)
        if url is not None and (not isinstance(url, str) or not url.startswith("http")):
            raise ValueError(f"{where}: {key} must be an http(s) URL")
    scope = values["scope"]
    if not isinstance(scope, str) or (kind == "oidc" and "openid" not in scope.split()):
        raise ValueError(f"{where}: scope must be a string (with 'openid' for OpenID Connect)")
    method = values.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in _AUTH_METHODS:
        raise ValueError(
            f"{where}: token_endpoint_auth_method must be one of {sorted(_AUTH_METHODS)}"
        )
    params = values.get("authorize_params") or {}
    if not isinstance(params, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise TypeError(f"{where}: authorize_params must be a dict of strings")
    label = values.get("label") or name.replace("-", " ").replace("_", " ").title()
    return Provider(
        name=name,
        kind=kind,
        label=str(label),
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        scope=scope,
        token_endpoint_auth_method=method,
        server_metadata_url=values.get("server_metadata_url"),
        authorize_url=values.get("authorize_url"),
        access_token_url=values.get("access_token_url"),
        api_base_url=values.get("api_base_url"),
        authorize_params=dict(params),
    )


class OAuthState:
    """One app's providers: their settings, Authlib's clients, the user-data function."""

    def __init__(
        self, settings: OAuthSettings, registry: Any, user_data: UserDataFunction | None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.user_data = user_data

    def client(self, name: str) -> tuple[Provider, Any]:
        """A provider and its Authlib client; 404 for a name that is not configured."""
        provider = self.settings.providers.get(name)
        if provider is None:
            raise NotFound()
        return provider, self.registry.create_client(name)


def _client_options(provider: Provider, timeout: float) -> dict[str, Any]:
    """Authlib's registration of a provider: PKCE S256 always, a timeout on every request."""
    return {
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "server_metadata_url": provider.server_metadata_url,
        "authorize_url": provider.authorize_url,
        "access_token_url": provider.access_token_url,
        "api_base_url": provider.api_base_url,
        "authorize_params": dict(provider.authorize_params) or None,
        "access_token_params": None,
        "request_token_url": None,  # OAuth 2 only
        "request_token_params": None,
        "refresh_token_url": None,
        "refresh_token_params": None,
        "client_kwargs": {
            "scope": provider.scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": provider.token_endpoint_auth_method,
            "default_timeout": timeout,
        },
    }


def oauth_state() -> OAuthState | None:
    """The current app's providers (``app.extensions["lucia_oauth"]``); None without any."""
    found: OAuthState | None = current_app.extensions.get("lucia_oauth")
    return found
