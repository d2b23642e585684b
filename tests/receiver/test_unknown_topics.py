"""A signed webhook for a topic the catalogue has no webhook entry for: 200, never handed on, counted in /metrics and
in Redis for `status`; a forged one is still refused and counts nothing."""

from __future__ import annotations

import httpx
from sqlalchemy.orm import Session, sessionmaker

from receiver.unknown_topics import UNKNOWN_TOPICS_KEY, unknown_topic_counts
from runtime.contracts import LAST_WEBHOOK_KEY
from tests.factories import create_subscription
from tests.receiver.builders import signed_webhook
from tests.receiver.conftest import Receiver

METRIC = "exact_webhook_unknown_topics_total"


def metrics(receiver: Receiver) -> str:
    return httpx.get(f"{receiver.url}/metrics", timeout=5).text


def counts(receiver: Receiver) -> dict[str, int]:
    return unknown_topic_counts(receiver.redis, receiver.settings.redis_prefix)


def test_an_unknown_topic_is_answered_counted_and_not_enqueued(receiver: Receiver) -> None:
    for _ in range(2):
        response = receiver.post(signed_webhook(Topic="Nonsense"))
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "unknown_topic"
    response = receiver.post(signed_webhook(Topic="PayrollRuns", Division=441609))
    assert response.json()["outcome"] == "unknown_topic"
    assert receiver.queue() == []
    assert counts(receiver) == {"Nonsense": 2, "PayrollRuns": 1}
    text = metrics(receiver)
    assert f'{METRIC}{{topic="Nonsense"}} 2.0' in text
    assert f'{METRIC}{{topic="PayrollRuns"}} 1.0' in text
    assert 'exact_webhook_requests_total{outcome="unknown_topic"} 3.0' in text
    # Not handed on, so not a sign of life for any pair either.
    assert receiver.redis.hgetall(receiver.settings.redis_prefix + LAST_WEBHOOK_KEY) == {}


def test_a_read_only_lane_is_not_a_webhook_topic(receiver: Receiver) -> None:
    response = receiver.post(signed_webhook(Topic="GLAccounts"))
    assert response.json()["outcome"] == "unknown_topic"
    assert receiver.queue() == []
    assert counts(receiver) == {"GLAccounts": 1}


def test_a_tracked_pair_of_an_unsupported_topic_is_not_handed_on_either(
    receiver: Receiver, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session, session.begin():
        create_subscription(session, division=101, topic="Legacy")
    response = receiver.post(signed_webhook(Topic="Legacy"))
    assert response.json()["outcome"] == "unknown_topic"
    assert receiver.queue() == []
    assert counts(receiver) == {"Legacy": 1}


def test_a_supported_topic_still_goes_through(receiver: Receiver) -> None:
    response = receiver.post(signed_webhook(Topic="accounts"))
    assert response.json()["outcome"] == "enqueued"
    assert len(receiver.queue()) == 1
    assert counts(receiver) == {}
    assert METRIC + "{" not in metrics(receiver)


def test_a_forged_unknown_topic_is_refused_and_counts_nothing(receiver: Receiver) -> None:
    response = receiver.post(signed_webhook(secret="not-the-secret", Topic="Nonsense"))
    assert response.status_code == 401
    assert response.json()["outcome"] == "forged"
    assert receiver.queue() == []
    assert receiver.redis.exists(receiver.settings.redis_prefix + UNKNOWN_TOPICS_KEY) == 0
    assert METRIC + "{" not in metrics(receiver)
