"""runtime/metrics.py: calls labelled as the sandbox counts them, and samples summed across forked processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.metrics import exact_call_labels

BASE = "https://start.exactonline.nl"


@pytest.mark.parametrize(
    ("url", "labels"),
    [
        (f"{BASE}/api/v1/101/crm/Accounts?$select=ID", ("101", "crm/Accounts")),
        (f"{BASE}/api/v1/101/crm/Accounts(guid'3f2b0c1e-0000-0000-0000-000000000001')", ("101", "crm/Accounts")),
        (f"{BASE}/api/v1/202/financial/Currencies('EUR')", ("202", "financial/Currencies")),
        (f"{BASE}/api/v1/202/sync/CRM/Accounts?$filter=Timestamp gt 1", ("202", "sync/CRM/Accounts")),
        (f"{BASE}/api/v1/current/Me", ("none", "current/Me")),
        (f"{BASE}/api/oauth2/token", None),
    ],
)
def test_a_call_is_labelled_by_division_and_endpoint(url: str, labels: tuple[str, str] | None) -> None:
    assert exact_call_labels(httpx.URL(url)) == labels


# Two forked children count calls into the parent's directory; the parent serves the sums and drops a dead child.
_FORKED = textwrap.dedent(
    """
    import multiprocessing, os, sys
    from pathlib import Path
    import httpx
    from runtime.metrics import count_exact_call, enable_multiprocess, mark_process_dead, record_deliveries, serve

    directory = Path(sys.argv[1])
    enable_multiprocess(directory)

    def child(division: int, n: int) -> None:
        for status in [200] * n + [429]:
            request = httpx.Request("GET", f"https://start.exactonline.nl/api/v1/{division}/crm/Accounts")
            count_exact_call(httpx.Response(status, request=request))
        record_deliveries("http", delivered=n, dead=1)

    forked = multiprocessing.get_context("fork")
    children = [forked.Process(target=child, args=(d, n)) for d, n in ((101, 3), (202, 5))]
    for p in children:
        p.start()
    for p in children:
        p.join()
        mark_process_dead(p.pid, directory)
    server = serve(0, directory, addr="127.0.0.1")
    print(httpx.get(f"http://127.0.0.1:{server.server_port}/metrics").text)
    server.shutdown()
    """
)


def test_samples_of_forked_children_are_summed_by_the_serving_process(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _FORKED, str(tmp_path / "samples")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(run.stdout)
        for s in family.samples
    }

    def calls(division: str, status: str) -> float:
        labels = (("division", division), ("endpoint", "crm/Accounts"), ("status", status))
        return samples[("exact_api_calls_total", labels)]

    assert (calls("101", "200"), calls("202", "200"), calls("101", "429"), calls("202", "429")) == (3, 5, 1, 1)
    assert samples[("exact_api_rate_limited_total", (("division", "202"),))] == 1
    assert samples[("exact_pipeline_deliveries_total", (("sink", "http"), ("state", "delivered")))] == 8
    assert samples[("exact_pipeline_deliveries_total", (("sink", "http"), ("state", "dead")))] == 2
