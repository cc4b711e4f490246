"""The sync topic scheme (DESIGN.md §3): what each builder makes, what `parse` refuses and why, and that the
subscriptions and the broker ACL cover exactly the topics they are meant to."""

from __future__ import annotations

import re

import pytest

from appliance.ledger import sites
from appliance.sync import topics
from appliance.sync.topics import BadTopic, Topic


@pytest.mark.parametrize("built, text, parsed", [
    (topics.mv("BER"), "wh/v1/BER/mv", Topic("BER", "mv")),
    (topics.head("WAW"), "wh/v1/WAW/head", Topic("WAW", "head")),
    (topics.hwm("PAR2"), "wh/v1/PAR2/hwm", Topic("PAR2", "hwm")),
    (topics.status("B1234567"), "wh/v1/B1234567/status", Topic("B1234567", "status")),
    (topics.req("BER", "WAW"), "wh/v1/BER/req/WAW", Topic("BER", "req", "WAW")),
    (topics.resp("WAW", "BER"), "wh/v1/WAW/resp/BER", Topic("WAW", "resp", "BER")),
])
def test_every_builder_round_trips_through_parse(built, text, parsed):
    assert built == text
    assert topics.parse(text) == parsed
    assert str(parsed) == text
    assert text.startswith(topics.PREFIX + "/")


@pytest.mark.parametrize("topic, reason", [
    ("", "does not start with wh/v1/"),
    ("wh", "unsupported version ''"),
    ("xx/v1/BER/mv", "does not start with wh/v1/"),
    ("/wh/v1/BER/mv", "does not start with wh/v1/"),
    ("WH/v1/BER/mv", "does not start with wh/v1/"),
    ("wh/v2/BER/mv", "unsupported version 'v2'"),
    ("wh/V1/BER/mv", "unsupported version 'V1'"),
    ("wh/v1", "missing the publisher"),
    ("wh/v1/", "publisher '' is not a site id"),
    ("wh/v1/BER", "missing the kind"),
    ("wh/v1/BER/", "unknown kind ''"),
    ("wh/v1/BER/movements", "unknown kind 'movements'"),
    ("wh/v1/BER/MV", "unknown kind 'MV'"),
    ("wh/v1/BER/mv/", "unexpected segments after 'mv'"),
    ("wh/v1/BER/mv/WAW", "unexpected segments after 'mv'"),
    ("wh/v1/BER/head/x/y", "unexpected segments after 'head'"),
    ("wh/v1/BER/req", "missing the addressee"),
    ("wh/v1/BER/resp", "missing the addressee"),
    ("wh/v1/BER/req/", "addressee '' is not a site id"),
    ("wh/v1/BER/req/WAW/", "unexpected segments after the addressee"),
    ("wh/v1/BER/req/WAW/extra", "unexpected segments after the addressee"),
    ("wh/v1/BER/req/BER", "cannot address req to itself"),
    ("wh/v1/BER/resp/BER", "cannot address resp to itself"),
    ("wh/v1/ber/mv", "publisher 'ber' is not a site id"),
    ("wh/v1/B/mv", "publisher 'B' is not a site id"),
    ("wh/v1/1BER/mv", "publisher '1BER' is not a site id"),
    ("wh/v1/BERLIN123/mv", "publisher 'BERLIN123' is not a site id"),
    ("wh/v1/BER-1/mv", "publisher 'BER-1' is not a site id"),
    ("wh/v1/BER\n/mv", "publisher 'BER\\n' is not a site id"),
    ("wh/v1/BÉR/mv", "publisher 'BÉR' is not a site id"),
    ("wh/v1/BER/req/waw", "addressee 'waw' is not a site id"),
    ("wh/v1/+/mv", "wildcard"),
    ("wh/v1/BER/#", "wildcard"),
    ("wh/v1/#", "wildcard"),
    ("wh/v1/+/req/BER", "wildcard"),
    (b"wh/v1/BER/mv", "a topic is a string"),
    (None, "a topic is a string"),
])
def test_bad_topics_are_refused_with_the_reason(topic, reason):
    with pytest.raises(BadTopic) as caught:
        topics.parse(topic)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError) and repr(topic) in str(caught.value)


@pytest.mark.parametrize("build, args, reason", [
    (topics.mv, ("ber",), "publisher 'ber' is not a site id"),
    (topics.head, ("",), "publisher '' is not a site id"),
    (topics.hwm, ("BER/x",), "publisher 'BER/x' is not a site id"),
    (topics.status, ("+",), "publisher '+' is not a site id"),
    (topics.mv, (None,), "publisher None is not a site id"),
    (topics.req, ("BER", "#"), "addressee '#' is not a site id"),
    (topics.req, ("BER", "BER"), "cannot address req to itself"),
    (topics.resp, ("waw", "BER"), "publisher 'waw' is not a site id"),
    (topics.subscriptions, ("BER\n",), "subscriber 'BER\\n' is not a site id"),
])
def test_builders_refuse_what_parse_would_refuse(build, args, reason):
    with pytest.raises(BadTopic) as caught:
        build(*args)
    assert reason in caught.value.reason


def test_the_topic_kinds_are_the_six_of_the_spec():
    assert topics.KINDS == ("mv", "head", "hwm", "status", "req", "resp")
    assert topics.PREFIX == "wh/v1"


def _matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching (`+` one level, `#` the rest), enough to check the filters below."""
    regex = re.escape(pattern).replace(r"\+", "[^/]+").replace("/\\#", "(/.*)?")
    return re.fullmatch(regex, topic) is not None


SITES = ("BER", "WAW", "PAR")
EVERY_TOPIC = [build(site) for site in SITES for build in (topics.mv, topics.head, topics.hwm, topics.status)] + [
    build(a, b) for a in SITES for b in SITES if a != b for build in (topics.req, topics.resp)]


def test_a_site_subscribes_to_every_broadcast_and_to_what_is_addressed_to_it():
    filters = topics.subscriptions("BER")
    assert filters == ["wh/v1/+/mv", "wh/v1/+/head", "wh/v1/+/hwm", "wh/v1/+/status",
                       "wh/v1/+/req/BER", "wh/v1/+/resp/BER"]
    for topic in EVERY_TOPIC:
        parsed = topics.parse(topic)
        wanted = parsed.peer in (None, "BER")
        assert any(_matches(f, topic) for f in filters) == wanted, topic


def test_the_acl_lets_a_site_publish_under_its_own_id_only_and_read_everything():
    assert topics.acl_lines() == ["pattern write wh/v1/%u/#", "pattern read wh/v1/#"]   # "topic read" binds anonymous clients only
    write, read = (line.split()[-1] for line in topics.acl_lines())
    for topic in EVERY_TOPIC:
        publisher = topics.parse(topic).publisher
        for user in SITES:
            assert _matches(write.replace("%u", user), topic) == (user == publisher), (user, topic)
        assert _matches(read, topic)


def test_site_ids_follow_the_ledger_rule():
    # One rule for a site id everywhere it appears; the ledger's pattern is anchored, ours is fullmatched.
    assert topics.SITE_ID.pattern == sites.SITE_ID.pattern.strip("^$")
