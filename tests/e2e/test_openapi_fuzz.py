"""Schemathesis against the app's own OpenAPI document, in process (ASGI), on the e2e stack.

Every operation of the schema is exercised, none excluded: writes with the operator's token (a
registrar of SH2 and a processor, so generated bodies reach the domain rules and the outbox, not
only the role check), reads with it too (reads ignore it). The checks: no 5xx, and every answer
conforms to the schema the app publishes. Bounded and deterministic: 25 examples per operation,
derandomized, no example database, no network.

The operations are walked in one test rather than through `schemathesis.pytest.from_fixture`:
its lazy fixture sets `request.node._nodeid`, which pytest 9 no longer has; the schema can only
be loaded once the stack (a module fixture) exists.
"""

from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from provenance.chain.logsource import RpcLogSource
from provenance.index import Indexer
from tests.e2e.conftest import Stack

MAX_EXAMPLES = 25


def index(stack: Stack) -> None:
    runtime = stack.runtime
    Indexer(runtime.engine, RpcLogSource(stack.w3, runtime.deployment.registry), runtime.deployment).sync()


BUDGET_S = 90.0
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_answers_without_5xx_and_as_its_schema_says(stack: Stack) -> None:
    # a lot and an index that holds it: the reads and the verification have something to find
    stack.register()
    index(stack)
    schema = schemathesis.openapi.from_asgi("/openapi.json", stack.http.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    started = time.monotonic()
    failures: dict[str, str] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @SETTINGS
        def exercise(case: Any) -> None:
            if case.query and str(case.query.get("wait")).lower() == "true":
                # ?wait=true&timeout=60 would only make the run slow; waiting has its own tests
                case.query["timeout"] = 1
            case.call_and_validate(
                headers=stack.operator.auth, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as error:  # every operation runs; failures reported together
            failures[operation.label] = f"{type(error).__name__}: {error}"[:2_000]

    assert failures == {}
    assert len(operations) >= 25, [operation.label for operation in operations]
    assert time.monotonic() - started < BUDGET_S
