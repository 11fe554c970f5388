"""The trust suite (issue: no code runs from a run folder, nothing lost, a broken model never
scores well, every failure is a clean error).

Each hostile case is one test (or one parameter of a test) marked ``trust("<area>")``; at the
end of the session the tally of cases played, per area, is printed, e.g.::

    trust: 61 hostile cases played, 61 held — security 9, ranking 7, nothing-lost 14, ...

Areas: ``security``, ``ranking``, ``nothing-lost``, ``ids``, ``clean-errors``.
"""

from __future__ import annotations

import collections

import pytest

AREAS = ("security", "ranking", "nothing-lost", "ids", "clean-errors")
_PLAYED: collections.Counter = collections.Counter()
_HELD: collections.Counter = collections.Counter()


def pytest_configure(config):
    config.addinivalue_line("markers", "trust(area): one hostile case of the trust suite (tests/trust)")


def pytest_collection_modifyitems(items):
    for item in items:
        mark = item.get_closest_marker("trust")
        if mark is not None and (not mark.args or mark.args[0] not in AREAS):
            raise pytest.UsageError(f"{item.nodeid}: trust(area) needs one of {AREAS}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    mark = item.get_closest_marker("trust")
    if mark is None or report.when != "call":
        return
    _PLAYED[mark.args[0]] += 1
    if report.passed:
        _HELD[mark.args[0]] += 1


def pytest_terminal_summary(terminalreporter):
    if not _PLAYED:
        return
    parts = ", ".join(f"{area} {_HELD[area]}/{_PLAYED[area]}" for area in AREAS if _PLAYED[area])
    terminalreporter.write_line(
        f"trust: {sum(_PLAYED.values())} hostile cases played, {sum(_HELD.values())} held — {parts}"
    )
