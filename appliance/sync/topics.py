"""Every MQTT topic of the sync protocol, built and parsed here and nowhere else (DESIGN.md §3).

    wh/v1/{publisher}/mv | head | hwm | status       broadcast by the publisher to every site
    wh/v1/{publisher}/req/{peer} | resp/{peer}       addressed from the publisher to one peer

The segment after the prefix is always the publisher, so the single broker ACL line
`pattern write wh/v1/%u/#` (username = certificate CN = site id) stops a box from publishing as another site.
Parsing is strict: a topic this module would not build is refused with the reason, so a stray or hostile
publish never reaches the inbox as something half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PREFIX = "wh/v1"
# Same rule as the ledger's site ids (ledger/sites.py, config/schema.py). fullmatch, because `$` would
# also accept a trailing newline.
SITE_ID = re.compile(r"[A-Z][A-Z0-9]{1,7}")
SITE_ID_RULE = "a site id is 2-8 upper-case letters/digits starting with a letter, e.g. BER"
_ROOT, _VERSION = PREFIX.split("/")

Kind = Literal["mv", "head", "hwm", "status", "req", "resp"]
BROADCAST: tuple[Kind, ...] = ("mv", "head", "hwm", "status")
ADDRESSED: tuple[Kind, ...] = ("req", "resp")
KINDS: tuple[Kind, ...] = BROADCAST + ADDRESSED


class BadTopic(ValueError):
    """A topic (or a site id given to a builder) outside the scheme; `reason` says what is wrong."""

    def __init__(self, topic: object, reason: str) -> None:
        super().__init__(f"bad topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


@dataclass(frozen=True)
class Topic:
    publisher: str
    kind: Kind
    peer: str | None = None   # the addressee of req/resp; None for broadcasts

    def __str__(self) -> str:
        tail = f"/{self.peer}" if self.peer is not None else ""
        return f"{PREFIX}/{self.publisher}/{self.kind}{tail}"


def is_site_id(value: object) -> bool:
    return isinstance(value, str) and SITE_ID.fullmatch(value) is not None


def _site(value: object, role: str, topic: object) -> str:
    if not is_site_id(value):
        raise BadTopic(topic, f"{role} {value!r} is not a site id ({SITE_ID_RULE})")
    return value  # type: ignore[return-value]  # is_site_id checked it is a str


def _broadcast(site: str, kind: Kind) -> str:
    topic = f"{PREFIX}/{site}/{kind}"
    _site(site, "publisher", topic)
    return topic


def _addressed(from_site: str, to_site: str, kind: Kind) -> str:
    topic = f"{PREFIX}/{from_site}/{kind}/{to_site}"
    _site(from_site, "publisher", topic)
    _site(to_site, "addressee", topic)
    if from_site == to_site:
        # noLocal subscriptions mean a site never receives its own publishes: this would vanish unanswered.
        raise BadTopic(topic, f"a site cannot address {kind} to itself")
    return topic


def mv(site: str) -> str:
    """Movement batches from `site` (live tail push)."""
    return _broadcast(site, "mv")


def head(site: str) -> str:
    """`site`'s current head (retained)."""
    return _broadcast(site, "head")


def hwm(site: str) -> str:
    """What `site` has applied from every origin (retained)."""
    return _broadcast(site, "hwm")


def status(site: str) -> str:
    """online / offline / recovering (retained; the last will says offline)."""
    return _broadcast(site, "status")


def req(from_site: str, to_site: str) -> str:
    """A request (fill, reserve, release) from `from_site` to `to_site`."""
    return _addressed(from_site, to_site, "req")


def resp(from_site: str, to_site: str) -> str:
    """A response from `from_site` to `to_site`: the answer to a request `to_site` sent to `from_site`."""
    return _addressed(from_site, to_site, "resp")


def parse(topic: str) -> Topic:
    """Split a topic a message arrived on; raises BadTopic with the reason for anything not built above."""
    if not isinstance(topic, str):
        raise BadTopic(topic, "a topic is a string")
    if "+" in topic or "#" in topic:
        raise BadTopic(topic, "a wildcard is a subscription filter, not a topic")
    segments = topic.split("/")   # the only split("/") of a topic in the sync code
    if segments[0] != _ROOT:
        raise BadTopic(topic, f"does not start with {PREFIX}/")
    if len(segments) < 2 or segments[1] != _VERSION:
        version = segments[1] if len(segments) > 1 else ""
        raise BadTopic(topic, f"unsupported version {version!r}; this site speaks {PREFIX}")
    rest = segments[2:]
    if not rest:
        raise BadTopic(topic, "missing the publisher segment")
    publisher = _site(rest[0], "publisher", topic)
    if len(rest) < 2:
        raise BadTopic(topic, f"missing the kind segment after the publisher; one of {', '.join(KINDS)}")
    kind = rest[1]
    if kind in BROADCAST:
        if len(rest) > 2:
            raise BadTopic(topic, f"unexpected segments after {kind!r}: {'/'.join(rest[2:])!r}")
        return Topic(publisher, kind)  # type: ignore[arg-type]  # checked against BROADCAST
    if kind in ADDRESSED:
        if len(rest) < 3:
            raise BadTopic(topic, f"missing the addressee segment after {kind!r}")
        if len(rest) > 3:
            raise BadTopic(topic, f"unexpected segments after the addressee: {'/'.join(rest[3:])!r}")
        peer = _site(rest[2], "addressee", topic)
        if peer == publisher:
            raise BadTopic(topic, f"a site cannot address {kind} to itself")
        return Topic(publisher, kind, peer)  # type: ignore[arg-type]  # checked against ADDRESSED
    raise BadTopic(topic, f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


def subscriptions(site: str) -> list[str]:
    """The filters `site` subscribes to: every broadcast, and requests and responses addressed to it."""
    _site(site, "subscriber", f"{PREFIX}/+/req/{site}")
    return [f"{PREFIX}/+/{kind}" for kind in BROADCAST] + [f"{PREFIX}/+/{kind}/{site}" for kind in ADDRESSED]


def acl_lines() -> list[str]:
    """Mosquitto ACL: a site (username = certificate CN = site id) writes only under its own id, reads all."""
    return [f"pattern write {PREFIX}/%u/#", f"pattern read {PREFIX}/#"]
