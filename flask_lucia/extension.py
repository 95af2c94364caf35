"""``Lucia``: ``init_app``, config defaults and wiring; the API of the current app's ``Auth``.

Nothing app-specific is stored here: each app's settings, storage and hasher
live in ``app.extensions["lucia"]``, so one ``Lucia`` serves several apps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request, current_app, has_request_context, request
from werkzeug.wrappers import Response

from flask_lucia import cli as _cli  # noqa: F401 - adds the core's commands
from flask_lucia import messages
from flask_lucia.activity import plugin as activity_plugin
from flask_lucia.cache import plugin as cache_plugin
from flask_lucia.config import DEFAULTS, Settings, email_verification
from flask_lucia.core.auth import Auth
from flask_lucia.core.cookies import set_cookie
from flask_lucia.core.models import (
    check_sign_up_columns,
    engine_factory,
    table_metadata,
    user_table,
    warn_on_ignored_url,
)
from flask_lucia.core.passwords import PasswordHasher
from flask_lucia.core.pending import MfaSettings, Pending
from flask_lucia.core.store.schema import Tables, user_primary_key
from flask_lucia.core.store.storage import Storage
from flask_lucia.core.throttle import Throttle
from flask_lucia.core.users import Users
from flask_lucia.email import plugin as email_plugin
from flask_lucia.email.flows import Emails
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import TEMPLATE_GLOBALS
from flask_lucia.mail import SendEmail
from flask_lucia.mfa import plugin as mfa_plugin
from flask_lucia.mfa.factor import SecondFactor
from flask_lucia.oauth import plugin as oauth_plugin
from flask_lucia.oauth.settings import UserDataFunction
from flask_lucia.passkeys import plugin as passkeys_plugin
from flask_lucia.passkeys.core import Passkey, Passkeys
from flask_lucia.types import Session, Tokens, User
from flask_lucia.web import base, hook, pages
from flask_lucia.web import credentials as _credentials  # noqa: F401 - adds its routes
from flask_lucia.web import views as _views  # noqa: F401 - adds its routes
from flask_lucia.web.blueprint import bp
from flask_lucia.web.commands import lucia_cli
from flask_lucia.web.extras import lucia_offers
from flask_lucia.web.pipeline import Pipeline
from flask_lucia.web.proxies import current_session, current_user, request_state
from flask_lucia.web.script import lucia_script


class Lucia:
    """The Flask extension: ``Lucia(app)`` or ``Lucia()`` then ``init_app(app)``."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: Any = None,
        user_model: type[Any] | sa.Table | None = None,
        user_columns: Iterable[sa.Column[Any]] = (),
        generate_user_id: Callable[[], Any] | None = None,
        oauth_user_data: UserDataFunction | None = None,
        send_email: SendEmail | None = None,
        identifier_columns: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        #: ``{provider: column}``: user columns filled from (and kept in step with) keys.
        self.identifier_columns = dict(identifier_columns or {})
        self.user_model = user_model
        self.user_columns = tuple(user_columns)
        self.generate_user_id = generate_user_id
        if oauth_user_data is not None and not callable(oauth_user_data):
            raise TypeError("oauth_user_data must be a function (provider name, profile) -> dict")
        #: ``fn(provider_name, profile) -> dict``: a provider-created user's data.
        self.oauth_user_data = oauth_user_data
        #: Sends every mail (an ``EmailMessage``) instead of Flask-Mailman or SMTP.
        self.send_email = send_email
        if send_email is not None and not callable(send_email):
            raise TypeError("send_email must be a callable taking an EmailMessage")
        if user_model is not None:
            if self.user_columns:
                raise ValueError("give user_columns or user_model, not both")
            user_primary_key(user_table(user_model))  # one-column primary keys only
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Apply ``LUCIA_*`` defaults, build this app's state, register blueprint and hooks."""
        if "lucia" in app.extensions:
            raise RuntimeError("flask-lucia is already initialized on this app")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        views = app.config["LUCIA_REGISTER_VIEWS"]
        app.config.setdefault("LUCIA_LOGIN_VIEW", "lucia.sign_in" if views else None)
        app.config.setdefault(
            "LUCIA_REAUTHENTICATE_VIEW", "lucia.reauthenticate" if views else None
        )
        config = app.config
        warn_on_ignored_url(app, self.db)
        table = None if self.user_model is None else user_table(self.user_model)
        model = None if isinstance(self.user_model, sa.Table) else self.user_model
        metadata = table_metadata(self.db, table)
        prefix = config["LUCIA_TABLE_PREFIX"]
        tables = Tables(metadata, prefix, self.user_columns, table, mapped=model is not None)
        create = config["LUCIA_CREATE_TABLES"]
        storage = Storage(
            engine_factory(app, self.db),
            tables,
            self.db is None if create is None else bool(create),
            reads_email_verified=email_verification(config) == "required",
            identifier_columns=self.identifier_columns,
        )
        settings = Settings.from_config(config, storage.user_column_names)
        check_sign_up_columns(settings, tables, self.identifier_columns)
        users = Users(storage.user_pk, storage.user_column_names, model, self.db)
        hasher = PasswordHasher(
            time_cost=config["LUCIA_PASSWORD_TIME_COST"],
            memory_cost=config["LUCIA_PASSWORD_MEMORY_COST"],
            parallelism=config["LUCIA_PASSWORD_PARALLELISM"],
            min_length=config["LUCIA_PASSWORD_MIN_LENGTH"],
            max_length=config["LUCIA_PASSWORD_MAX_LENGTH"],
        )
        generate = self.generate_user_id or config["LUCIA_GENERATE_USER_ID"]
        throttle = Throttle(storage, config)
        auth = Auth(settings, storage, hasher, throttle, generate, users)
        # The features register with the core and the pipeline; none imports another.
        pipeline = app.extensions["lucia_pipeline"] = Pipeline()
        oauth_plugin.init_app(app, auth, pipeline, self.oauth_user_data)
        email_plugin.init_app(app, auth, pipeline, self.send_email)
        app.extensions["lucia"] = auth
        pending = Pending(auth, MfaSettings.from_config(config, settings))
        app.extensions["lucia_pending"] = pending
        mfa_plugin.init_app(app, auth, pipeline, pending)
        passkeys_plugin.init_app(app, auth, pipeline)
        activity_plugin.init_app(app, auth)
        cache_plugin.init_app(app, auth)

        app.register_blueprint(bp, url_prefix=config["LUCIA_URL_PREFIX"])
        # First, so the app's own before_request functions already see current_user.
        app.before_request_funcs.setdefault(None, []).insert(0, hook.before_request)
        app.before_request(pages.routing_error)  # 404/405 under the prefix: page or JSON
        app.after_request(hook.after_request)
        app.register_error_handler(LuciaError, base.error_response)
        app.cli.add_command(lucia_cli)
        app.jinja_env.globals.update(
            current_user=current_user,
            current_session=current_session,
            lucia_script=lucia_script,
            lucia_offers=lucia_offers,
        )
        # _lucia(...) and the locale's times: docs/translations.rst
        app.jinja_env.globals.update(TEMPLATE_GLOBALS, lucia_time=messages.exact_time)

    # -- the seed API, on the current app ---------------------------------------

    @property
    def auth(self) -> Auth:
        """The current app's ``Auth``: settings, storage, hasher."""
        return base.state()

    def create_user(
        self,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        user_data: Mapping[str, Any] | None = None,
    ) -> Any:
        """Create a user keyed by ``provider:identifier`` (``createUser``)."""
        return self.auth.create_user(provider, identifier, password=password, user_data=user_data)

    def authenticate_user(self, provider: str, identifier: str, password: str) -> Any:
        """The user whose password this is (``authenticateUser``); throttled per identifier,
        and per client address inside a request.

        Inside a request the browser's device cookie counts too: one that signed in to
        this account before has its own budget, and a success gives the browser one.
        """
        if not has_request_context():
            return self.auth.authenticate_user(provider, identifier, password)
        user = self.auth.authenticate_user(
            provider,
            identifier,
            password,
            client_address=request.remote_addr,
            device=base.presented_device(),
        )
        hook.remember_device(provider, identifier)
        return user

    def get_user(self, user_id: Any) -> Any:
        """The user with this id (``getUser``)."""
        return self.auth.get_user(user_id)

    def get_user_by_provider_id(self, provider: str, identifier: str) -> Any:
        """The user keyed by ``provider:identifier`` (``getUserByProviderId``)."""
        return self.auth.get_user_by_provider_id(provider, identifier)

    def get_session_user(self, access_token: str) -> Any:
        """The user of a valid access token (``getSessionUser``)."""
        return self.auth.get_session_user(access_token)

    def update_user_data(self, user_id: Any, data: Mapping[str, Any]) -> Any:
        """Change some of the app's user columns (``updateUserData``)."""
        return self.auth.update_user_data(user_id, data)

    def update_user_password(self, user_id: Any, password: str | None) -> Any:
        """Set or remove a password; ends the user's other sessions (``updateUserPassword``).

        Inside a request signed in as this user, the request's own session is kept.
        """
        keep = request_state.get("_lucia_session") if has_request_context() else None
        keep_id = keep.session_id if keep is not None and keep.user_id == user_id else None
        return self.auth.update_user_password(user_id, password, keep_session=keep_id)

    def update_user_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Re-key a user (``updateUserProviderId``)."""
        return self.auth.update_user_provider_id(user_id, provider, identifier)

    def delete_user(self, user_id: Any) -> None:
        """Delete a user with its keys and sessions (``deleteUser``); refused with
        ``AUTH_USER_REFERENCED`` while the app's rows still point at it."""
        self.auth.delete_user(user_id)

    def add_provider_id(
        self,
        user_id: Any,
        provider: str,
        identifier: str,
        *,
        password: str | None = None,
        password_hash: str | None = None,
    ) -> Any:
        """Give a user another key ``provider:identifier`` (Lucia's ``createKey``), with a
        password, or an existing hash imported as it is (``password_hash``)."""
        return self.auth.add_provider_id(
            user_id, provider, identifier, password=password, password_hash=password_hash
        )

    def remove_provider_id(self, user_id: Any, provider: str, identifier: str) -> Any:
        """Take a key from a user; never the last way in (``AUTH_LAST_PROVIDER_ID``)."""
        return self.auth.remove_provider_id(user_id, provider, identifier)

    def get_user_provider_ids(self, user_id: Any) -> list[str]:
        """A user's keys as ``"provider:identifier"`` strings, the first one first."""
        return self.auth.get_user_provider_ids(user_id)

    # -- email (DESIGN §13) ------------------------------------------------------

    def email_verified(self, user_id: Any) -> datetime | None:
        """When the user's email address was verified (aware UTC), or None: not yet, or
        no email key. For ``user_model`` apps; built-in users have ``User.email_verified``."""
        return self.auth.email_verified(user_id)

    def send_verification_email(self, user_id: Any) -> str | None:
        """Mail the user a verification link; the address, or None when it is verified
        already. Raises ``MailError`` when the mail could not be sent."""
        emails: Emails = current_app.extensions["lucia_email"]
        return emails.send_verification(user_id)

    def send_password_reset(self, user_id: Any) -> str:
        """Mail the user a password reset link (older links stop working); the address.
        Raises ``MailError`` when the mail could not be sent."""
        emails: Emails = current_app.extensions["lucia_email"]
        return emails.send_reset(user_id)

    # -- second factors (DESIGN §15) -------------------------------------------------

    def two_factor_enabled(self, user_id: Any) -> bool:
        """Whether a user has TOTP on, so that a password alone does not sign it in."""
        second: SecondFactor = current_app.extensions["lucia_mfa"]
        return second.enabled(self.auth.users.check_id(user_id))

    def get_user_passkeys(self, user_id: Any) -> list[Passkey]:
        """A user's passkeys, oldest first (names, transports, times; never a key)."""
        passkeys: Passkeys = current_app.extensions["lucia_passkeys"]
        return passkeys.list(self.auth.users.check_id(user_id))

    # -- tables -----------------------------------------------------------------

    def create_tables(self) -> list[str]:
        """Create the current app's missing tables and upgrade an older schema in place;
        the names of the tables created. For apps without Flask-SQLAlchemy.

        Rows of flask-lucia whose user row is gone (an app that dropped and recreated its
        users table with foreign keys off) are removed, and logged as a warning.
        """
        storage = self.auth.storage
        created = storage.create_missing_tables(storage.bare_engine)
        orphans = storage.orphans(remove=True)
        if orphans:
            current_app.logger.warning("flask-lucia removed rows whose user is gone: %s", orphans)
        return created

    def orphaned_rows(self, *, remove: bool = False) -> dict[str, int]:
        """Rows of flask-lucia whose user row is gone, counted per table (``remove``:
        deleted too). None of them signs anyone in; they wait here for a recycled id."""
        return self.auth.storage.orphans(remove=remove)

    def drop_tables(self) -> None:
        """Drop flask-lucia's tables of the current app (never the app's user model)."""
        self.auth.storage.drop_tables()

    def create_session(
        self, user_id: Any, *, fresh: bool = False, remember: bool = True, mfa: bool = False
    ) -> tuple[Session, Tokens]:
        """A new session and token pair for a user (``createSession``); ``remember=False``
        makes its cookies browser-session cookies; ``mfa``: a second factor was proved."""
        return self.auth.create_session(user_id, fresh=fresh, remember=remember, mfa=mfa)

    def validate_access_token(self, access_token: str) -> Session:
        """The session of a valid access token (``validateAccessToken``). The first
        validation of an access token a refresh issued is recorded (one write): from
        then on a replay of the refresh token spent into it revokes the session."""
        return self.auth.validate_access_token(access_token)

    def validate_refresh_token(self, refresh_token: str) -> Any:
        """The user id of a usable refresh token, without rotating (``validateRefreshToken``)."""
        return self.auth.validate_refresh_token(refresh_token)

    def refresh_session(self, refresh_token: str) -> tuple[Session, Tokens]:
        """Rotate a refresh token into a new pair (``refreshSession``). A session that
        rotated three times within ``LUCIA_REFRESH_GRACE`` gets its live pair back (or a
        new access token beside the same refresh token) until the grace lets it rotate:
        that keeps every token spent within the grace usable by racing tabs."""
        return self.auth.refresh_session(refresh_token)

    def invalidate_session(self, access_token: str) -> None:
        """End an access token's session; idempotent (``invalidateSession``)."""
        self.auth.invalidate_session(access_token)

    def invalidate_all_user_sessions(self, user_id: Any) -> None:
        """End every session of a user (``invalidateAllUserSessions``)."""
        self.auth.invalidate_all_user_sessions(user_id)

    def invalidate_user_session(self, user_id: Any, session_id: str) -> None:
        """End one session (device) of a user."""
        self.auth.invalidate_user_session(user_id, session_id)

    def get_user_sessions(self, user_id: Any) -> list[Session]:
        """A user's sessions: the signed-in devices."""
        return self.auth.get_user_sessions(user_id)

    def delete_expired_user_sessions(self, user_id: Any) -> None:
        """Remove a user's expired sessions (``deleteExpiredUserSessions``)."""
        self.auth.delete_expired_user_sessions(user_id)

    def delete_expired_sessions(self) -> int:
        """Remove every user's expired sessions and tokens; the number of rows removed."""
        return self.auth.delete_expired_sessions()

    # -- the request -------------------------------------------------------------

    def parse_request(self, request: Request | None = None) -> tuple[str, str]:
        """``(access_token, refresh_token)`` of the current request; CSRF-checked."""
        _current_only(request)
        return hook.parse_request()

    def validate_request(self, request: Request | None = None) -> Session:
        """The current request's session (validated, refreshed if needed by the hook)."""
        _current_only(request)
        return hook.validate_request()

    def sign_in(
        self,
        user_or_id: User | str,
        *,
        fresh: bool = True,
        remember: bool = True,
        mfa: bool = False,
    ) -> Session:
        """Start a new session for this request; cookies go on the response.
        ``remember=False``: browser-session cookies (no ``Max-Age``), for "remember me" off;
        ``mfa``: the user proved a second factor (``Session.mfa``, for ``mfa_required``)."""
        return hook.sign_in(user_or_id, fresh=fresh, remember=remember, mfa=mfa)

    def sign_out(self) -> None:
        """End this request's session; the response clears the cookies."""
        hook.sign_out()

    def delete_all_cookies(self, response: Response) -> None:
        """Add headers that delete both auth cookies to ``response``."""
        set_cookie(response, *self.auth.clearing_cookies())


def _current_only(request: Request | None) -> None:
    """Flask has one request per context: accept it (or None), refuse any other."""
    from flask import request as current_request

    if request is not None and request is not current_request._get_current_object():  # type: ignore[attr-defined]
        raise TypeError("request must be the current request (or omitted)")
