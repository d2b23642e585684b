from __future__ import annotations

import time

import httpx

from tests.sandbox.conftest import Api


class TestFaults:
    def test_n_failures_with_500_then_recovery(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "error", "endpoint": "crm/Contacts", "count": 2})
        statuses = [api.get("101/crm/Contacts").status_code for _ in range(3)]
        assert statuses == [500, 500, 200]
        assert api.get("101/financial/GLAccounts").status_code == 200

    def test_slow_responses(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "slow", "delay": 1.5, "count": 1})
        with httpx.Client(base_url=str(api.http.base_url), timeout=0.3) as impatient:
            try:
                impatient.get("/api/v1/101/crm/Contacts", headers=api.headers())
                timed_out = False
            except httpx.TimeoutException:
                timed_out = True
        assert timed_out

    def test_forced_429_with_minutely_headers(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "429", "count": 1, "window_seconds": 30})
        response = api.get("101/crm/Contacts")
        assert response.status_code == 429
        assert int(response.headers["x-ratelimit-minutely-reset"]) > time.time() * 1000
        assert "x-ratelimit-reset" not in response.headers
        assert api.get("101/crm/Contacts").status_code == 200

    def test_faults_can_be_cleared(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "error", "count": 5})
        sandbox_http.delete("/_sandbox/faults")
        assert api.get("101/crm/Contacts").status_code == 200

    def test_unknown_kind_is_refused(self, sandbox_http: httpx.Client) -> None:
        assert sandbox_http.post("/_sandbox/faults", json={"kind": "meteor"}).status_code == 400

    def test_timeout_answers_504_without_running_the_call(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "timeout", "delay": 0.2, "endpoint": "crm/Contacts"})
        response = api.post("101/crm/Contacts", {"FirstName": "Ghost"})
        assert response.status_code == 504
        records = sandbox_http.get("/_sandbox/records/101/crm/Contacts").json()["records"]
        assert "Ghost" not in {r.get("FirstName") for r in records}

    def test_slow_still_runs_the_call(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "slow", "delay": 0.2, "endpoint": "crm/Contacts"})
        assert api.post("101/crm/Contacts", {"FirstName": "Late"}).status_code == 201
        records = sandbox_http.get("/_sandbox/records/101/crm/Contacts").json()["records"]
        assert "Late" in {r.get("FirstName") for r in records}

    def test_faults_can_target_one_division_and_status(self, api: Api, sandbox_http: httpx.Client) -> None:
        sandbox_http.post("/_sandbox/faults", json={"kind": "error", "division": 202, "status": 503, "count": 1})
        assert api.get("101/crm/Contacts").status_code == 200
        failed = api.get("202/crm/Contacts")
        assert failed.status_code == 503
        assert failed.json()["error"]["message"]["value"]
        assert sandbox_http.get("/_sandbox/faults").json() == {"faults": [], "fired": 1}

    def test_forced_429_resets_on_the_next_whole_window_of_the_sandbox_clock(
        self, api: Api, sandbox_http: httpx.Client
    ) -> None:
        before = sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 300}).json()["now"]
        sandbox_http.post("/_sandbox/faults", json={"kind": "429"})
        response = api.get("101/crm/Contacts")
        after = sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 0}).json()["now"]
        reset_ms = int(response.headers["x-ratelimit-minutely-reset"])
        assert reset_ms % 60_000 == 0
        # The next whole minute of the sandbox clock (5 minutes ahead of the wall clock), not of time.time().
        assert before * 1000 < reset_ms <= after * 1000 + 60_000
        assert response.headers["x-ratelimit-minutely-limit"] == "60"
