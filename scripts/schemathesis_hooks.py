"""schemathesis hooks for scripts/openapi-check.sh.

A Shared Signals poll without `returnImmediately` waits up to 15 s for a SET; the fuzzer's polls
ask to return at once, so that a run does not spend its time waiting.

JSON Schema counts 651.0 as an integer; the server reads integer fields as JSON integer literals
(651), as every client that holds an integer writes them. Generated bodies write integral numbers
as integers; the value, and so whether it is valid, does not change.
"""

import schemathesis


def _integral(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


@schemathesis.hook
def map_body(context, body):
    body = _integral(body)
    operation = getattr(context, "operation", None)
    polls = getattr(operation, "path", None) == "/api/v1/ssf/poll"
    if polls and isinstance(body, dict) and body.get("returnImmediately", False) is False:
        # Only a valid value is changed (an invalid one stays for the negative checks).
        body = {**body, "returnImmediately": True}
    return body
