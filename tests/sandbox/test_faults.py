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
