from __future__ import annotations

from subscriptions.plan import Action, Desired, Observed, plan

URL = "https://sync.example.nl/webhooks/exact"


def kinds(actions: list[Action]) -> list[tuple[str, int, str]]:
    return [(a.kind, a.division, a.topic) for a in actions]


class TestPlan:
    def test_missing_ones_are_created(self) -> None:
        actions = plan([Desired(101, "Accounts", URL), Desired(202, "Items", URL)], [])
        assert kinds(actions) == [("create", 101, "Accounts"), ("create", 202, "Items")]

    def test_matching_ones_are_adopted_once(self) -> None:
        observed = [Observed("e1", 101, "Accounts", URL)]
        assert kinds(plan([Desired(101, "Accounts", URL)], observed)) == [("adopt", 101, "Accounts")]
        assert plan([Desired(101, "Accounts", URL)], observed, known=[(101, "Accounts", "e1")]) == []

    def test_drifted_callback_is_recreated(self) -> None:
        observed = [Observed("e1", 101, "Accounts", "https://old.example.nl/webhooks/exact")]
        [action] = plan([Desired(101, "Accounts", URL)], observed)
        assert (action.kind, action.exact_id, action.callback_url) == ("recreate", "e1", URL)
        assert "drifted" in action.reason

    def test_unwanted_ones_are_deleted(self) -> None:
        actions = plan([], [Observed("e9", 101, "Contacts", URL)])
        assert kinds(actions) == [("delete", 101, "Contacts")]
        assert actions[0].exact_id == "e9"

    def test_archived_divisions_lose_theirs_and_get_none(self) -> None:
        actions = plan([Desired(303, "Accounts", URL)], [Observed("e3", 303, "Accounts", URL)], inactive=[303])
        assert kinds(actions) == [("delete", 303, "Accounts")]

    def test_ungranted_divisions_are_reported_not_called(self) -> None:
        actions = plan([Desired(404, "Accounts", URL)], [], ungranted=[404])
        assert kinds(actions) == [("unreachable", 404, "Accounts")]

    def test_topics_match_case_insensitively(self) -> None:
        actions = plan(
            [Desired(101, "accounts", URL)], [Observed("e1", 101, "Accounts", URL)], known=[(101, "Accounts", "e1")]
        )
        assert actions == []
