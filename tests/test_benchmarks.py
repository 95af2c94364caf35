"""The benchmark apps compare like with like: each serves the same signed-in page."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks.apps import KINDS, USER_ID, create_app, seed
from benchmarks.report import percentile, ratio_table


@pytest.fixture(scope="module")
def bench_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file: the benchmarks' own table names must not meet the suite's."""
    return f"sqlite:///{Path(tmp_path_factory.mktemp('bench')) / 'bench.sqlite3'}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_benchmark_app_serves_the_signed_in_page(bench_url: str, kind: str) -> None:
    headers = seed(bench_url)[kind]
    client = create_app(kind, bench_url).test_client(use_cookies=False)
    response = client.get("/protected", headers=headers)
    assert response.status_code == 200
    assert f"Signed in as {USER_ID}" in response.get_data(as_text=True)


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "bare"])
def test_every_authenticating_benchmark_app_refuses_a_request_without_cookies(
    bench_url: str, kind: str
) -> None:
    seed(bench_url)
    client = create_app(kind, bench_url).test_client()
    response = client.get("/protected", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_the_ratio_table_divides_by_flask_login_and_by_the_floor() -> None:
    table = ratio_table(
        {"lucia": 90.0, "flask-login": 45.0, "floor": 100.0},
        {"lucia": [80.0, 90.0], "flask-login": [45.0], "floor": [100.0]},
    )
    lucia_row = table.splitlines()[1].split()
    assert lucia_row[0] == "lucia" and lucia_row[-2:] == ["2.00x", "0.90x"]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([1.0, 2.0], 0.99) == 2.0


def test_the_scale_benchmark_runs_end_to_end_at_a_small_size(tmp_path: Path) -> None:
    from benchmarks import scale

    args = argparse.Namespace(
        sessions=300, small=50, expired=300, sample=200, refreshes=20, batch_size=100, sign_ins=1
    )
    lines = list(scale.run(f"sqlite:///{tmp_path / 'scale.sqlite3'}", args))
    report = "\n".join(lines)
    assert "300 sessions median" in report
    assert "cleanup: 900 rows" in report  # 300 expired sessions, each with two tokens
    assert "sign-in: POST /auth/sign-in median" in report


def test_lucia_costs_more_python_calls_than_the_floor_and_fewer_than_flask_login(
    bench_url: str,
) -> None:
    from benchmarks.request_calls import calls_per_request

    headers = seed(bench_url)
    calls = {
        kind: calls_per_request(kind, bench_url, headers[kind], 50)
        for kind in ("lucia", "floor", "flask-login")
    }
    assert calls["floor"] < calls["lucia"] < calls["flask-login"]
