"""`GET /events`: the Server-Sent Events stream every live page listens to (see events.py)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, stream_with_context

from appliance.webapp import events
from appliance.webapp.context import parts, requires, web

bp = Blueprint("live", __name__)


@bp.route("/events")
@requires("view")
def stream():
    topics = frozenset(t for t in request.args.get("topics", ",".join(events.TOPICS)).split(",") if t)
    unknown = topics - set(events.TOPICS)
    if unknown or not topics:
        abort(400, description=f"topics must be a comma-separated subset of {', '.join(events.TOPICS)}")
    db = parts().db
    since = request.headers.get("Last-Event-ID") or request.args.get("since")
    cursor = events.Cursor.parse(since) if since else None
    if since and cursor is None:
        abort(400, description=f"cursor {since!r} is not of the form m<id>.s<id>.a<version>")
    if cursor is None:
        cursor = events.current_cursor(db.connection())
    station = request.args.get("station") or None
    body = events.stream(web().feed, db.connection, cursor, topics, station)
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
