"""Error answers a person can read: an HTML page for a browser, the JSON body for a script.

A form post from a browser (it asks for HTML) that flask-lucia refuses gets
``lucia/error.html``; a client that sends JSON, asks for JSON, or asks for
nothing in particular (``*/*``) gets ``{"error", "message"}`` as before. With
``LUCIA_REGISTER_VIEWS = False`` flask-lucia serves no HTML: every answer is JSON.
"""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response as BaseResponse

from flask_lucia import messages
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.web.base import error_response

_HTML = ("text/html", "application/xhtml+xml")


def wants_html() -> bool:
    """True when the client names HTML in ``Accept`` and prefers it to JSON (a browser),
    and the app has flask-lucia's pages."""
    if request.is_json or not current_app.config["LUCIA_REGISTER_VIEWS"]:
        return False
    accept = request.accept_mimetypes
    if not any(value in _HTML and quality > 0 for value, quality in accept):
        return False
    return accept.best_match(("text/html", "application/json")) == "text/html"


def error_page(error: LuciaError, status: int | None = None, **extra: object) -> Response:
    """``error`` as ``lucia/error.html`` for a browser, else as the JSON error body."""
    if not wants_html():
        return error_response(error, status, **extra)
    status = status or error.status
    page = render_template(
        "lucia/error.html",
        status=status,
        title=messages.page_title(status),
        message=error.message,
        home=request.script_root + "/",
    )
    response = current_app.make_response((page, status))
    response.headers["Cache-Control"] = "no-store"
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return refuse_framing(response)


def outcome(what: messages.Outcome, sentence: str) -> BaseResponse:
    """After a form that changed the account: ``sentence`` flashed as a success and a 303 to
    ``/auth/done``, a built-in page that shows it, whatever the app's own pages render."""
    flash(gettext(sentence), "success")
    return redirect(url_for("lucia.done", what=what), 303)


def refuse_framing(response: Response) -> Response:
    """HTML answers may not be framed (clickjacking); an app's own setting of either
    header is kept, and a policy of its own without ``frame-ancestors`` gets ours beside it.

    The blueprint's pages get this from its ``after_request``; error pages answered outside
    it (a 404 under the prefix, the hook's 403 on an app route) get it here.
    """
    if response.mimetype == "text/html":
        headers = response.headers
        headers.setdefault("X-Frame-Options", "DENY")
        policies = headers.getlist("Content-Security-Policy")
        if not any("frame-ancestors" in policy.lower() for policy in policies):
            headers.add("Content-Security-Policy", "frame-ancestors 'none'")
    return response


def refused() -> Response:
    """403 to a request that failed the cross-site check (DESIGN §5): a page that says what
    happened for a browser, the usual JSON body for a script."""
    if wants_html():
        return error_page(LuciaError("AUTH_INVALID_REQUEST", messages.CROSS_SITE))
    return error_response(LuciaError("AUTH_INVALID_REQUEST"))


def http_error(error: HTTPException) -> Response:
    """A 404 or 405 (any HTTP error) under the blueprint, as a page or as JSON."""
    status = error.code or 500
    text = {404: messages.NOT_FOUND, 405: messages.METHOD_NOT_ALLOWED, 413: messages.TOO_LARGE}
    response = error_page(LuciaError("AUTH_INVALID_REQUEST", text.get(status)), status)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def routing_error() -> ResponseReturnValue | None:
    """``before_request``: a path under ``LUCIA_URL_PREFIX`` that matched no route (404) or
    not this method (405) gets flask-lucia's answer; the app's own paths are left alone.

    Routing fails before Flask knows the blueprint, so its error handlers cannot see it.
    """
    failure = request.routing_exception
    if not isinstance(failure, (NotFound, MethodNotAllowed)):
        return None
    prefix = str(current_app.config["LUCIA_URL_PREFIX"]).rstrip("/")
    if not prefix or not (request.path + "/").startswith(prefix + "/"):
        return None
    return http_error(failure)
