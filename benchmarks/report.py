"""Shared printing for the benchmarks: the machine line and the ratio table."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
from collections.abc import Callable


def machine() -> str:
    """What ran the benchmark: CPU, cores, Python, key package versions."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for package in ("flask", "sqlalchemy", "flask-login", "flask-sqlalchemy"):
        with contextlib.suppress(PackageNotFoundError):
            versions.append(f"{package} {version(package)}")
    return f"machine: {cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]}; " + ", ".join(
        versions
    )


def interleaved(
    kinds: list[str], rounds: int, measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """``measure(kind)`` for every kind, ``rounds`` times, starting each round one kind later
    so that no app always runs first (or last) while the machine warms or is disturbed."""
    results: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind in kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]:
            results[kind].append(measure(kind))
    return results


def print_results(setup: str, results: dict[str, list[float]]) -> None:
    """The machine, what was run, and each app's median req/s with its ratios."""
    medians = {kind: statistics.median(values) for kind, values in results.items()}
    print(machine())
    print(setup)
    print(ratio_table(medians, results))


def ratio_table(medians: dict[str, float], results: dict[str, list[float]]) -> str:
    """Rows of app, median req/s, spread, and ratios to flask-login and to the floor."""
    lines = [f"{'app':<18}{'req/s':>9}{'min-max':>17}{'/flask-login':>14}{'/floor':>9}"]
    for kind, value in medians.items():
        low, high = min(results[kind]), max(results[kind])
        to_login = _ratio(value, medians.get("flask-login"))
        to_floor = _ratio(value, medians.get("floor"))
        lines.append(
            f"{kind:<18}{value:>9.0f}{f'{low:.0f}-{high:.0f}':>17}{to_login:>14}{to_floor:>9}"
        )
    return "\n".join(lines)


def _ratio(value: float, base: float | None) -> str:
    return "-" if not base else f"{value / base:.2f}x"


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
