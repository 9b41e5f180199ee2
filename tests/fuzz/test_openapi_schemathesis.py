"""schemathesis against the OpenAPI 3.1 documents the server publishes (``/openapi/{pin|dialect}.json``,
what ``specgate openapi`` writes): the RPC form at the highest and the lowest pin, and each REST
dialect. Every operation gets a few schema-valid requests (answers: no 5xx, a declared status and
content type, a body that conforms to its declared schema) and a few schema-invalid ones (no 5xx).
Failures are collected over all operations of a document and reported together."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as C

from fuzz.conftest import CASES, fuzz_settings
from fuzz.targets import TABLES
from specgate_codegen import openapi
from specgate.runtime.docs import api_from_tables

PINS = openapi.versions(api_from_tables(TABLES))
DOCUMENTS = [str(PINS[0]), str(PINS[-1]), *sorted(TABLES.dialects)]
POSITIVE_CHECKS = [C.not_a_server_error, C.status_code_conformance, C.content_type_conformance, C.response_schema_conformance]


def _run(operation, mode: GenerationMode, examples: int, client, checks, failures: list[str]) -> None:
    fresh = "logout" in operation.label  # ending the session must not end the fuzzing client's

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        token = client.fresh_token() if fresh else client.token
        response = case.call(base_url=client.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        CASES[f"schemathesis {mode.value}"] += 1
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong: an operation without parameters has no negative cases
        pass
    except Exception as e:  # one operation's failure must not hide the others'
        failures.append(f"{operation.label} [{mode.value}]: {str(e)[:1500]}")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_published_openapi_documents_hold(client, document):
    schema = schemathesis.openapi.from_url(f"{client.server.url}/openapi/{document}.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, document
    failures: list[str] = []
    for operation in operations:
        _run(operation, GenerationMode.POSITIVE, 1 if document == DOCUMENTS[0] else 3, client, POSITIVE_CHECKS, failures)
        _run(operation, GenerationMode.NEGATIVE, 1, client, [C.not_a_server_error], failures)
    assert not failures, f"{len(failures)} of {len(operations)} operations failed:\n\n" + "\n\n".join(failures)
    client.alive()
