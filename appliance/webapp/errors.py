"""One error shape for the API, one error page for browsers, both from the same typed errors.

API: `{"error": {"code": "insufficient_stock", "message": "...", "details": {...}}}` with the error's HTTP
status. Codes are stable; clients branch on them, people read the message. 400s name the field in
`details.field` and list every bad field in `details.fields` ({field: message}).
"""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from appliance.errors import ApplianceError
from appliance.webapp.context import is_api_request

logger = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 429: "too_many_requests"}


def error_body(code: str, message: str, **details) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def _render(status: int, code: str, message: str, details: dict, headers: dict | None = None):
    if is_api_request() or request.accept_mimetypes.best == "application/json":
        response = jsonify(error_body(code, message, **details))
        response.status_code = status
    else:
        response = render_template("error.html", status=status, code=code, message=message), status
    if isinstance(response, tuple):
        from flask import make_response
        response = make_response(*response)
    if status == 401 and is_api_request():
        response.headers["WWW-Authenticate"] = 'Bearer realm="appliance"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_appliance_error(error: ApplianceError):
    details = dict(error.details)
    if "field" in details and "fields" not in details:
        details["fields"] = {details["field"]: error.message}
    headers = {}
    if "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    if error.http_status >= 500:
        logger.error("%s %s failed: %s", request.method, request.path, error.message)
    return _render(error.http_status, error.code, error.message, details, headers)


def handle_http_error(error: HTTPException):
    status = error.code or 500
    code = HTTP_CODES.get(status, "http_error")
    message = error.description or error.name
    if status == 400 and error.description == "csrf":
        code, message = "csrf_failed", ("the form expired or did not come from this appliance; "
                                        "reload the page and try again")
    elif status == 401:
        message = "log in, or send a valid API token as 'Authorization: Bearer wh_…'"
    elif status == 403:
        message = "your role does not allow this"
    return _render(status, code, message, {})


def handle_unexpected(error: Exception):
    logger.exception("%s %s failed", request.method, request.path)
    return _render(500, "internal_error", "something went wrong on the appliance; the log has the details", {})


def register(app) -> None:
    app.register_error_handler(ApplianceError, handle_appliance_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
