"""Property-based requests generated from the app's own OpenAPI document: never a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.app import create_app
from engine.settings import Settings
from tests.api.conftest import AUTH

EXAMPLES_PER_OPERATION = 30


class RecordingDispatcher:
    """Records requested runs instead of starting them: the fuzz run tests the API alone."""

    def __init__(self) -> None:
        self.submitted: list[tuple[int, str | None]] = []

    def submit(self, run_id: int, service: str | None) -> None:
        self.submitted.append((run_id, service))


def test_no_operation_answers_5xx(evaluated: Settings) -> None:
    app = create_app(evaluated, RecordingDispatcher())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        strategy = operation.as_strategy()

        @given(case=strategy, authorized=st.booleans())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, authorized: bool) -> None:
            response = case.call(headers=AUTH if authorized else None)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                f"{case.body!r}: {response.status_code} {response.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:20])

