from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.plan import INACTIVE, UNGRANTED, Action, Desired, Observed, plan

URL = "https://sync.example.nl/webhooks/exact"
OLD = "https://old.example.nl/webhooks/exact"


def kinds(actions: list[Action]) -> list[tuple[str, int, str]]:
    return [(a.kind, a.division, a.topic) for a in actions]


class TestCreateAndAdopt:
    def test_missing_ones_are_created_with_our_callback(self) -> None:
        actions = plan([Desired(202, "Items", URL), Desired(101, "Accounts", URL)], [])
        assert kinds(actions) == [("create", 101, "Accounts"), ("create", 202, "Items")]
        assert {a.callback_url for a in actions} == {URL}
        assert actions[0].reason == "missing in Exact"

    def test_one_deleted_behind_our_back_is_created_again(self) -> None:
        [action] = plan([Desired(101, "Accounts", URL, exact_id="e1")], [])
        assert (action.kind, action.reason) == ("create", "gone from Exact (was e1)")

    def test_a_matching_one_is_adopted_until_recorded(self) -> None:
        observed = [Observed("e1", 101, "Accounts", URL)]
        [action] = plan([Desired(101, "Accounts", URL)], observed)
        assert (action.kind, action.exact_id) == ("adopt", "e1")
        assert plan([Desired(101, "Accounts", URL, exact_id="e1")], observed) == []

    def test_a_different_id_than_recorded_is_adopted(self) -> None:
        actions = plan([Desired(101, "Accounts", URL, exact_id="old")], [Observed("e2", 101, "Accounts", URL)])
        assert [(a.kind, a.exact_id) for a in actions] == [("adopt", "e2")]

    def test_a_failed_pair_that_exact_now_holds_is_adopted(self) -> None:
        desired = [Desired(101, "Accounts", URL, note="Post to callback URL endpoint returns 503")]
        assert kinds(plan(desired, [Observed("e1", 101, "Accounts", URL)])) == [("adopt", 101, "Accounts")]

    def test_topics_match_case_insensitively(self) -> None:
        observed = [Observed("e1", 101, "Accounts", URL)]
        assert plan([Desired(101, "accounts", URL, exact_id="e1")], observed) == []


class TestDrift:
    def test_drifted_callback_is_recreated(self) -> None:
        [action] = plan([Desired(101, "Accounts", URL, exact_id="e1")], [Observed("e1", 101, "Accounts", OLD)])
        assert (action.kind, action.exact_id, action.callback_url) == ("recreate", "e1", URL)
        assert action.reason == f"CallbackURL drifted from {URL}: {OLD}"

    def test_drifted_next_to_a_good_one_is_only_deleted(self) -> None:
        observed = [Observed("e1", 101, "Accounts", URL), Observed("e2", 101, "Accounts", OLD)]
        actions = plan([Desired(101, "Accounts", URL, exact_id="e1")], observed)
        assert [(a.kind, a.exact_id) for a in actions] == [("delete", "e2")]

    def test_duplicates_keep_the_recorded_one(self) -> None:
        observed = [Observed("a", 101, "Accounts", URL), Observed("z", 101, "Accounts", URL)]
        actions = plan([Desired(101, "Accounts", URL, exact_id="z")], observed)
        assert [(a.kind, a.exact_id, a.reason) for a in actions] == [("delete", "a", "duplicate of z")]

    def test_several_drifted_become_one_recreate(self) -> None:
        observed = [Observed("a", 101, "Accounts", OLD), Observed("b", 101, "Accounts", OLD + "2")]
        actions = plan([Desired(101, "Accounts", URL)], observed)
        assert [(a.kind, a.exact_id) for a in actions] == [("delete", "b"), ("recreate", "a")]


class TestForgotten:
    def test_untracked_ones_are_deleted(self) -> None:
        actions = plan([], [Observed("e9", 101, "Contacts", URL)])
        assert [(a.kind, a.division, a.topic, a.exact_id) for a in actions] == [("delete", 101, "Contacts", "e9")]
        assert "void" in actions[0].reason

    def test_archived_division_loses_all_and_its_wanted_pair_is_suspended(self) -> None:
        desired = [Desired(303, "Accounts", URL, exact_id="e3")]
        observed = [Observed("e3", 303, "Accounts", URL), Observed("e4", 303, "Items", OLD)]
        actions = plan(desired, observed, inactive=[303])
        assert [(a.kind, a.topic, a.exact_id) for a in actions] == [
            ("delete", "Accounts", "e3"),
            ("suspend", "Accounts", None),
            ("delete", "Items", "e4"),
        ]
        assert actions[1].reason == INACTIVE

    def test_a_suspended_pair_stays_quiet_until_the_division_returns(self) -> None:
        desired = [Desired(303, "Accounts", URL, note=INACTIVE)]
        assert plan(desired, [], inactive=[303]) == []
        assert kinds(plan(desired, [])) == [("create", 303, "Accounts")]

    def test_ungranted_divisions_are_reported_once_and_never_called(self) -> None:
        [action] = plan([Desired(404, "Accounts", URL, exact_id="e1")], [], ungranted=[404])
        assert (action.kind, action.exact_id, action.reason) == ("unreachable", None, UNGRANTED)
        assert plan([Desired(404, "Accounts", URL, note=UNGRANTED)], [], ungranted=[404]) == []

    def test_ungranted_wins_over_inactive(self) -> None:
        actions = plan([Desired(404, "Accounts", URL)], [], inactive=[404], ungranted=[404])
        assert kinds(actions) == [("unreachable", 404, "Accounts")]


# -- convergence: apply a plan the way Exact and the service would, and the next plan is empty

DIVISIONS = [101, 202, 303, 404]
TOPICS = ["Accounts", "accounts", "Items", "SalesInvoices"]
URLS = [URL, OLD]
ids = (f"x{n}" for n in itertools.count())

desireds = st.builds(
    Desired,
    st.sampled_from(DIVISIONS),
    st.sampled_from(TOPICS),
    st.just(URL),
    st.one_of(st.none(), st.sampled_from(["o0", "o1", "gone"])),
    st.sampled_from([None, INACTIVE, UNGRANTED, "some old error"]),
)
observeds = st.builds(
    Observed,
    st.sampled_from([f"o{n}" for n in range(6)]),
    st.sampled_from(DIVISIONS),
    st.sampled_from(TOPICS),
    st.sampled_from(URLS),
)


def _unique(items: list[Desired]) -> list[Desired]:
    return list({(d.division, d.topic.lower()): d for d in items}.values())


def _apply(
    actions: list[Action], desired: list[Desired], observed: list[Observed]
) -> tuple[list[Desired], list[Observed]]:
    held = {o.exact_id: o for o in observed}
    ours = {(d.division, d.topic.lower()): d for d in desired}
    for action in actions:
        pair = (action.division, action.topic.lower())
        if action.kind in ("delete", "recreate"):
            assert action.exact_id in held, "a delete names an ID Exact holds"
            del held[str(action.exact_id)]
        if action.kind in ("create", "recreate"):
            assert action.callback_url == URL
            new = Observed(next(ids), action.division, action.topic, URL)
            held[new.exact_id] = new
            ours[pair] = Desired(action.division, ours[pair].topic, URL, new.exact_id)
        elif action.kind == "adopt":
            ours[pair] = Desired(action.division, ours[pair].topic, URL, action.exact_id)
        elif action.kind in ("suspend", "unreachable"):
            ours[pair] = Desired(action.division, ours[pair].topic, URL, None, action.reason)
    return list(ours.values()), list(held.values())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(desireds, max_size=8).map(_unique),
    st.lists(observeds, max_size=8, unique_by=lambda o: o.exact_id),
    st.sets(st.sampled_from(DIVISIONS)),
    st.sets(st.sampled_from(DIVISIONS)),
)
def test_one_plan_makes_exact_match_and_the_next_plan_is_empty(
    desired: list[Desired], observed: list[Observed], inactive: set[int], ungranted: set[int]
) -> None:
    # Exact cannot be listed in an ungranted division, so nothing is observed there.
    observed = [o for o in observed if o.division not in ungranted]
    desired_after, held_after = _apply(
        plan(desired, observed, inactive=inactive, ungranted=ungranted), desired, observed
    )
    assert plan(desired_after, held_after, inactive=inactive, ungranted=ungranted) == []
    reachable = [d for d in desired if d.division not in inactive | ungranted]
    assert sorted((o.division, o.topic.lower(), o.callback_url) for o in held_after) == sorted(
        (d.division, d.topic.lower(), URL) for d in reachable
    )
    recorded = {(d.division, d.topic.lower()): d for d in desired_after}
    # Every subscription Exact holds is recorded against its pair, with no stale error left on it.
    assert all(recorded[(o.division, o.topic.lower())].exact_id == o.exact_id for o in held_after)
    assert all(recorded[(o.division, o.topic.lower())].note is None for o in held_after)
