"""A local OAuth2 authorization server for tests (Authlib on Flask, in a thread of the test process).

It speaks what Google's and Microsoft's servers speak to a mail client: the authorization code grant with
PKCE (S256, required of every client), refresh tokens (rotated by default, as Microsoft does), token
introspection (RFC 7662, which the test Dovecot uses to check the bearer tokens of XOAUTH2/OAUTHBEARER
logins) and revocation (RFC 7009). Everything lives in memory; tests steer it with ``issue_tokens``,
``expire_access_tokens``, ``revoke`` and read what clients sent in ``token_requests``.
"""

from __future__ import annotations

import fnmatch
import html
import secrets
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

DEFAULT_SCOPE = (
    "https://mail.google.com/ openid email offline_access IMAP.AccessAsUser.All SMTP.Send "
    "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send"
)
_CODE_LIFETIME = 600  # seconds, RFC 6749's recommended maximum
_SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# Public clients authenticate with "none"; last, as a confidential client may send its id in the form too.
_TOKEN_AUTH_METHODS = [*_SECRET_AUTH_METHODS, "none"]
_GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass
class _Client(ClientMixin):
    """A registered client; no secret makes it a public one."""

    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    scope: str

    def get_client_id(self) -> str:
        """The client's id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """The first registered URI, unless it is a pattern."""
        first = self.redirect_uris[0] if self.redirect_uris else None
        return first if first is not None and "*" not in first else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client is registered for all of it (None: invalid_scope)."""
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return scope if set(scope.split()) <= allowed else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Whether the URI is registered, exactly or by an fnmatch pattern."""
        return any(fnmatch.fnmatchcase(redirect_uri, pattern) for pattern in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        """Whether ``client_secret`` is this confidential client's secret."""
        return self.client_secret is not None and secrets.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Public clients send no secret; confidential ones send it in the form or as HTTP Basic."""
        if self.client_secret is None:
            return method == "none"
        return method in _SECRET_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """The code and refresh grants."""
        return grant_type in _GRANT_TYPES


@dataclass
class _Code(AuthorizationCodeMixin):
    """An authorization code, waiting for its (single) exchange."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    username: str
    code_challenge: str
    code_challenge_method: str
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        """The redirect URI the authorization request named, if it named one."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope


@dataclass
class _Token(TokenMixin):
    """An access token and, unless refreshed without rotation, its refresh token."""

    client: _Client
    username: str
    scope: str
    access_token: str
    refresh_token: str | None
    issued_at: int
    expires_at: int
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        """Whether the token was issued to ``client``."""
        return bool(self.client.client_id == client.get_client_id())

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope

    def get_expires_in(self) -> int:
        """The access token's lifetime in seconds."""
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        """Whether the access token has expired."""
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        """Whether the access token was revoked."""
        return self.access_revoked

    def get_user(self) -> str:
        """The user's name."""
        return self.username

    def get_client(self) -> _Client:
        """The client the token was issued to."""
        return self.client

    @property
    def active(self) -> bool:
        """Whether the access token still opens a mailbox."""
        return not self.is_expired() and not self.is_revoked()


class _Store:
    """The server's state, behind one lock: Flask serves each request in a thread of its own."""

    def __init__(
        self, access_token_lifetime: int, rotate_refresh_tokens: bool, introspection_client: str
    ) -> None:
        self.lock = threading.RLock()
        self.introspection_client = introspection_client
        self.initial_lifetime = self.access_token_lifetime = access_token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clients: dict[str, _Client] = {}
        self.codes: dict[str, _Code] = {}
        self.by_access: dict[str, _Token] = {}
        self.by_refresh: dict[str, _Token] = {}
        self.refresh_count = self.refresh_attempts = self.code_exchanges = self.introspections = 0
        self.last_authorize_params: dict[str, str] = {}
        self.token_requests: list[dict[str, str]] = []

    def reset(self) -> None:
        """Forget tokens, codes, counters and records; the lifetime is the constructor's again."""
        with self.lock:
            self.codes.clear()
            self.by_access.clear()
            self.by_refresh.clear()
            self.refresh_count = self.refresh_attempts = self.code_exchanges = self.introspections = 0
            self.last_authorize_params = {}
            self.token_requests = []
            self.access_token_lifetime = self.initial_lifetime

    def client(self, client_id: str) -> _Client | None:
        """The registered client, or None."""
        with self.lock:
            return self.clients.get(client_id)

    def add_token(self, client: _Client, username: str, token: dict[str, Any]) -> _Token:
        """Record a token dict as Authlib's generator makes it."""
        now = int(time.time())
        record = _Token(
            client=client,
            username=username,
            scope=token.get("scope", ""),
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            issued_at=now,
            expires_at=now + int(token.get("expires_in", 0)),
        )
        with self.lock:
            self.by_access[record.access_token] = record
            if record.refresh_token is not None:
                self.by_refresh[record.refresh_token] = record
        return record

    def access(self, access_token: str) -> _Token | None:
        """The token record of an access token, active or not."""
        with self.lock:
            return self.by_access.get(access_token)

    def refresh(self, refresh_token: str) -> _Token | None:
        """The token record of a refresh token that still works, or None."""
        with self.lock:
            record = self.by_refresh.get(refresh_token)
            return record if record is not None and not record.refresh_revoked else None

    def records(self, username: str | None) -> list[_Token]:
        """Every token record (of ``username``)."""
        with self.lock:
            return [t for t in self.by_access.values() if username is None or t.username == username]


def _new_access_token(**_: Any) -> str:
    return secrets.token_urlsafe(32)


def _new_refresh_token(**_: Any) -> str:
    return secrets.token_urlsafe(48)


class _AuthorizationServer(AuthorizationServer):
    """Authlib's Flask server, carrying the store its grants and endpoints read."""

    def __init__(self, app: Flask, store: _Store) -> None:
        self.store = store
        super().__init__(app, query_client=store.client, save_token=self._record_token)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                _new_access_token, _new_refresh_token, lambda client, grant_type: store.access_token_lifetime
            ),
        )

    def _record_token(self, token: dict[str, Any], oauth_request: Any) -> None:
        self.store.add_token(oauth_request.client, oauth_request.user, token)
        with self.store.lock:
            if oauth_request.payload.grant_type == "authorization_code":
                self.store.code_exchanges += 1
            else:
                self.store.refresh_count += 1


class _S256Required(CodeChallenge):
    """PKCE for every client, S256 only: Authlib's ``required`` alone exempts confidential clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Refuse an authorization request without an S256 code challenge."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _AuthorizationCodeGrant(AuthorizationCodeGrant):
    """The code grant over the in-memory store."""

    TOKEN_ENDPOINT_AUTH_METHODS = _TOKEN_AUTH_METHODS

    def save_authorization_code(self, code: str, oauth_request: Any) -> None:
        """Keep the code with what its exchange must match."""
        data = oauth_request.payload.data
        store: _Store = self.server.store
        with store.lock:
            store.codes[code] = _Code(
                code=code,
                client_id=oauth_request.client.client_id,
                redirect_uri=oauth_request.payload.redirect_uri,
                scope=oauth_request.scope,
                username=oauth_request.user,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                expires_at=time.time() + _CODE_LIFETIME,
            )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        """The unexpired code if it was issued to ``client``."""
        store: _Store = self.server.store
        with store.lock:
            found = store.codes.get(code)
        if found is None or found.client_id != client.client_id or found.expires_at < time.time():
            return None
        return found

    def validate_token_request(self) -> None:
        """Authlib's checks (PKCE's included), then claim the code: of two concurrent exchanges, one fails."""
        super().validate_token_request()
        store: _Store = self.server.store
        with store.lock:
            if store.codes.pop(self.request.authorization_code.code, None) is None:
                raise InvalidGrantError("Invalid 'code' in request.")

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Nothing left to do: ``validate_token_request`` claimed the code."""

    def authenticate_user(self, authorization_code: _Code) -> str:
        """The user who allowed the request."""
        return authorization_code.username


class _RefreshTokenGrant(RefreshTokenGrant):
    """The refresh grant; with rotation the old refresh token is revoked at once (no grace period)."""

    TOKEN_ENDPOINT_AUTH_METHODS = _TOKEN_AUTH_METHODS

    @property
    def INCLUDE_NEW_REFRESH_TOKEN(self) -> bool:
        """Whether a refresh issues a new refresh token (Authlib's class switch, per server here)."""
        return bool(self.server.store.rotate_refresh_tokens)

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        """The record of a refresh token that still works."""
        store: _Store = self.server.store
        return store.refresh(refresh_token)

    def authenticate_user(self, refresh_token: _Token) -> str:
        """The token's user."""
        return refresh_token.username

    def validate_token_request(self) -> None:
        """Authlib's checks, then, when rotating, revoke the refresh token: it refreshes exactly once."""
        super().validate_token_request()
        store: _Store = self.server.store
        if store.rotate_refresh_tokens:
            record: _Token = self.request.refresh_token
            with store.lock:
                if record.refresh_revoked:  # a concurrent refresh came first
                    raise InvalidGrantError()
                record.refresh_revoked = True  # its access token stays valid, as at Microsoft

    def revoke_old_credential(self, refresh_token: _Token) -> None:
        """Nothing left to do: ``validate_token_request`` revoked a rotated refresh token."""


class _IntrospectionEndpoint(IntrospectionEndpoint):
    """RFC 7662 for access tokens; refresh tokens introspect as inactive (they open no mailbox)."""

    CLIENT_AUTH_METHODS = list(_SECRET_AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        """The access token's record."""
        store: _Store = self.server.store
        return store.access(token_string)

    def check_permission(self, token: _Token, client: _Client, oauth_request: Any) -> bool:
        """The introspection client sees every token, other clients their own."""
        return bool(client.client_id == self.server.store.introspection_client or token.check_client(client))

    def introspect_token(self, token: _Token) -> dict[str, Any]:
        """The RFC 7662 answer; Dovecot reads ``username`` and ``active``."""
        return {
            "active": True,
            "username": token.username,
            "sub": token.username,
            "scope": token.scope,
            "exp": token.expires_at,
            "iat": token.issued_at,
            "client_id": token.client.client_id,
            "token_type": "Bearer",
        }


class _RevocationEndpoint(RevocationEndpoint):
    """RFC 7009: a revoked refresh token takes its access token along, a revoked access token only itself."""

    CLIENT_AUTH_METHODS = _TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        """The record holding the token, whichever kind it is."""
        store: _Store = self.server.store
        with store.lock:
            return store.by_refresh.get(token_string) or store.by_access.get(token_string)

    def revoke_token(self, token: _Token, oauth_request: Any) -> None:
        """Mark the token (and, for a refresh token, its access token) revoked."""
        with self.server.store.lock:
            token.access_revoked = True
            if oauth_request.form["token"] == token.refresh_token:
                token.refresh_revoked = True


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log, which would print a line per request to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


_CONSENT_PAGE = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>Test OAuth2 server: sign in</title></head>
<body>
<h1>{client_id} asks for access</h1>
<p>Scope: {scope}</p>
<form method="post" action="{action}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{username}">
<button type="submit" id="allow" name="decision" value="allow">Allow</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>
</body></html>
"""


class OAuth2Server:
    """A loopback OAuth2 authorization server with in-memory clients and tokens."""

    host = "127.0.0.1"

    def __init__(self, *, access_token_lifetime: int = 3600, rotate_refresh_tokens: bool = True) -> None:
        """Prepare (but do not start) the server and register the introspection client."""
        self.introspection_credentials = ("mail-server-introspection", secrets.token_hex(16))
        self._store = _Store(access_token_lifetime, rotate_refresh_tokens, self.introspection_credentials[0])
        self._app = Flask(__name__)
        self._authorization = _AuthorizationServer(self._app, self._store)
        self._authorization.register_grant(_AuthorizationCodeGrant, [_S256Required(required=True)])
        self._authorization.register_grant(_RefreshTokenGrant)
        self._authorization.register_endpoint(_IntrospectionEndpoint)
        self._authorization.register_endpoint(_RevocationEndpoint)
        self._add_routes()
        self.register_client(*self.introspection_credentials, redirect_uris=[])
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OAuth2Server:
        """Listen on a new port and serve in a daemon thread."""
        assert self._server is None, "already started"
        self._server = make_server(
            self.host, 0, self._app, threaded=True, request_handler=_QuietRequestHandler
        )
        self.base_url = f"http://{self.host}:{self._server.server_port}"
        # stop() waits for the serving loop's next poll: a short interval keeps it quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oauth2-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OAuth2Server:
        """The started server."""
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        self.stop()

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint (GET: consent page, POST: the user's decision)."""
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        """The token endpoint (authorization_code and refresh_token grants)."""
        return self.base_url + "/token"

    @property
    def introspection_url(self) -> str:
        """The RFC 7662 introspection endpoint (client authentication required)."""
        return self.base_url + "/introspect"

    @property
    def revocation_url(self) -> str:
        """The RFC 7009 revocation endpoint."""
        return self.base_url + "/revoke"

    # -- clients and tokens ------------------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str | None, redirect_uris: list[str], scope: str = DEFAULT_SCOPE
    ) -> None:
        """Register (or replace) a client; no secret: public; redirect URIs may be fnmatch patterns."""
        with self._store.lock:
            self._store.clients[client_id] = _Client(client_id, client_secret, list(redirect_uris), scope)

    def issue_tokens(self, username: str, client_id: str, scope: str | None = None) -> dict[str, Any]:
        """Mint tokens as a code exchange would (the client's registered scope by default), without one."""
        client = self._store.client(client_id)
        if client is None:
            raise ValueError(f"unknown client {client_id!r}")
        lifetime = self._store.access_token_lifetime
        token = {
            "access_token": _new_access_token(),
            "refresh_token": _new_refresh_token(),
            "expires_in": lifetime,
            "scope": client.scope if scope is None else scope,
        }
        record = self._store.add_token(client, username, token)
        return {
            "access_token": record.access_token,
            "refresh_token": record.refresh_token,
            "expires_in": lifetime,
            "expires_at": record.expires_at,
            "token_type": "Bearer",
        }

    def expire_access_tokens(self, username: str | None = None) -> None:
        """Let every current access token (of ``username``) expire now; refresh tokens keep working."""
        now = int(time.time())
        with self._store.lock:
            for record in self._store.records(username):
                record.expires_at = min(record.expires_at, now)

    def revoke(self, username: str) -> None:
        """Revoke every token of ``username``: refreshing answers 400 invalid_grant."""
        with self._store.lock:
            for record in self._store.records(username):
                record.access_revoked = record.refresh_revoked = True

    def set_access_token_lifetime(self, seconds: int) -> None:
        """The ``expires_in`` of access tokens issued from now on (until ``reset``)."""
        with self._store.lock:
            self._store.access_token_lifetime = seconds

    def username_of(self, access_token: str) -> str | None:
        """The user of an active access token; None when unknown, expired or revoked."""
        with self._store.lock:
            record = self._store.by_access.get(access_token)
            return record.username if record is not None and record.active else None

    def reset(self) -> None:
        """Forget all tokens, codes, counters and records, and the lifetime set; clients stay."""
        self._store.reset()

    # -- what clients did --------------------------------------------------------------------

    @property
    def refresh_count(self) -> int:
        """How many refresh_token grants succeeded."""
        with self._store.lock:
            return self._store.refresh_count

    @property
    def refresh_attempts(self) -> int:
        """How many refresh_token grants were asked for, failed ones included."""
        with self._store.lock:
            return self._store.refresh_attempts

    @property
    def code_exchanges(self) -> int:
        """How many authorization codes were exchanged for tokens."""
        with self._store.lock:
            return self._store.code_exchanges

    @property
    def introspections(self) -> int:
        """How many introspection requests came in (Dovecot makes one per OAuth2 login)."""
        with self._store.lock:
            return self._store.introspections

    @property
    def last_authorize_params(self) -> dict[str, str]:
        """The query parameters of the last GET of the authorization endpoint."""
        with self._store.lock:
            return dict(self._store.last_authorize_params)

    @property
    def token_requests(self) -> list[dict[str, str]]:
        """The form fields of every token request, oldest first, secrets, codes and verifiers unmasked."""
        with self._store.lock:
            return [dict(fields) for fields in self._store.token_requests]

    # -- HTTP --------------------------------------------------------------------------------

    def _add_routes(self) -> None:
        app, store, authorization = self._app, self._store, self._authorization

        @app.get("/authorize")
        def consent_page() -> Response:
            with store.lock:
                store.last_authorize_params = request.args.to_dict()
            try:
                authorization.get_consent_grant(end_user=None)
            except OAuth2Error as error:
                return _authorization_error(authorization, error)
            page = _CONSENT_PAGE.format(
                client_id=html.escape(request.args.get("client_id", "")),
                scope=html.escape(request.args.get("scope", "")),
                # The form posts back to this very URL: Authlib reads the request's parameters from it.
                action=html.escape("/authorize?" + request.query_string.decode("latin-1")),
                username=html.escape(request.args.get("login_hint", "")),
            )
            return Response(page, mimetype="text/html")

        @app.post("/authorize")
        def decision() -> Response:
            username = request.form.get("username", "").strip()
            allowed = request.form.get("decision") == "allow"
            if allowed and not username:
                return Response("A username is required to allow access.", status=400, mimetype="text/plain")
            try:
                grant = authorization.get_consent_grant(end_user=username or None)
            except OAuth2Error as error:
                return _authorization_error(authorization, error)
            # Without a user Authlib redirects with error=access_denied (and the state).
            response: Response = authorization.create_authorization_response(
                grant_user=username if allowed else None, grant=grant
            )
            return response

        @app.post("/token")
        def token() -> Response:
            fields = request.form.to_dict()
            with store.lock:
                store.token_requests.append(fields)
                if fields.get("grant_type") == "refresh_token":
                    store.refresh_attempts += 1
            response: Response = authorization.create_token_response()
            return response

        @app.post("/introspect")
        def introspect() -> Response:
            with store.lock:
                store.introspections += 1
            response: Response = authorization.create_endpoint_response("introspection")
            return response

        @app.post("/revoke")
        def revoke() -> Response:
            response: Response = authorization.create_endpoint_response("revocation")
            return response


def _authorization_error(authorization: _AuthorizationServer, error: OAuth2Error) -> Response:
    """Redirect to the client once its redirect URI is known good (RFC 6749 4.1.2.1), else a 400 page."""
    if error.redirect_uri:
        response: Response = authorization.handle_error_response(None, error)
        return response
    text = f"<!doctype html><title>OAuth2 error</title><h1>{html.escape(error.error)}</h1>"
    text += f"<p>{html.escape(error.description or '')}</p>"
    return Response(text, status=400, mimetype="text/html")
