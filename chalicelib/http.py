"""HTTP answers: the one place where errors become responses."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import ParamSpec

from chalice import Response

from chalicelib.errors import ServiceError

log = logging.getLogger(__name__)
P = ParamSpec("P")

# Errors must not stick in browsers or CDNs: the cause is often fixed minutes later.
NO_STORE = {"Cache-Control": "no-store"}


def redirect(url: str) -> Response:
    """Send the browser to the stored variant; never cached, so a later miss can't loop."""
    return Response(body="", status_code=307, headers={"Location": url, **NO_STORE})


def negotiated_redirect(url: str, max_age: int) -> Response:
    """Send the browser to the variant its ``Accept`` header chose (docs/urls.md).

    Cached by the browser only (``private``: a shared cache that ignores
    ``Vary`` would hand one browser's format to another), for as long as it
    keeps the variant itself.  The target is a concrete URL: if it is purged
    meanwhile it is an ordinary miss, so a cached answer never loops.
    """
    headers = {"Location": url, "Vary": "Accept", "Cache-Control": f"private, max-age={max_age}"}
    return Response(body="", status_code=307, headers=headers)


def error_response(err: ServiceError) -> Response:
    """A JSON error with a stable ``code``; the internal detail goes to the log only."""
    return Response(
        body={"code": err.code, "message": err.public_message},
        status_code=err.status,
        headers={**NO_STORE, **err.headers},
    )


def json_errors(view: Callable[P, Response]) -> Callable[P, Response]:
    """Turn every exception a view raises into a JSON error response."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return view(*args, **kwargs)
        except ServiceError as err:
            log_level = logging.ERROR if err.status >= 500 else logging.INFO
            log.log(log_level, "refused: %s %s: %s", err.status, err.code, err)
            return error_response(err)
        except Exception:
            log.exception("unexpected failure")
            return error_response(ServiceError("internal error"))

    return guarded


def wants_html(accept: str | None) -> bool:
    """Whether ``Accept`` names ``text/html`` first: a browser tab, not ``<img>``, curl or fetch."""
    first = (accept or "").split(",", 1)[0].split(";", 1)[0]
    return first.strip().lower() == "text/html"


def html_error(status: int, code: str, message: str) -> str:
    """A small page with an error's message and code, every piece of it escaped."""
    title = html.escape(f"{status}: {message}")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; '
        'padding: 0 1rem; line-height: 1.5">'
        f"<h1>{html.escape(message)}</h1>"
        f"<p>Error <code>{html.escape(code)}</code>, HTTP status {status}.</p></body></html>"
    )


def browser_errors(
    accept: Callable[[], str | None],
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Serve a view's JSON errors as a small HTML page to a browser tab that asks for HTML.

    ``accept`` reads the current request's ``Accept`` header.  The status,
    code, message and headers stay the same; everything else keeps the JSON.
    """

    def decorate(view: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(view)
        def negotiated(*args: P.args, **kwargs: P.kwargs) -> Response:
            response = view(*args, **kwargs)
            body = response.body
            if response.status_code < 400 or not isinstance(body, dict) or "code" not in body:
                return response
            if not wants_html(accept()):
                return response
            page = html_error(response.status_code, str(body["code"]), str(body["message"]))
            headers = {**response.headers, "Content-Type": "text/html; charset=utf-8"}
            return Response(body=page, status_code=response.status_code, headers=headers)

        return negotiated

    return decorate


# What a page may send to the API across origins, and how long a preflight holds.
CORS_ALLOWED_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_SECONDS = "600"


def cors_headers(origin: str | None, allowed: tuple[str, ...], methods: str) -> dict[str, str]:
    """The CORS headers for a request from ``origin``: none unless it is allowed."""
    if not origin or not ("*" in allowed or origin.rstrip("/") in allowed):
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
        "Access-Control-Max-Age": CORS_MAX_AGE_SECONDS,
        "Vary": "Origin",
    }
