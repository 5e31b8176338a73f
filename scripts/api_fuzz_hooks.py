"""Schemathesis hooks for scripts/test-api-fuzz.sh.

`POST /train` accepts trainings of up to 10 000 epochs, 16 levels of 64 units of 4 096 neurons (10 M parameters):
valid requests that take hours on a laptop. Fuzzing must exercise the endpoint, not the CPU, so the sizes in
generated `/train` bodies are capped before each call. Everything else (types, names, datasets, modes) is left as
schemathesis generated it.
"""

import schemathesis

CAPS = {
    "epochs": 2,
    "levels": 2,
    "units_per_level": 2,
    "neurons_per_unit": 8,
    "patience": 2,
}


def _cap(value, limit):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return min(value, limit)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return str(min(number, limit)) if number == number else value
    if isinstance(value, list):
        return [_cap(v, limit) for v in value[: CAPS["levels"]]]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/train" or not isinstance(case.body, dict):
        return
    params = case.body.get("params")
    if not isinstance(params, dict):
        return
    for key, limit in CAPS.items():
        if key in params:
            params[key] = _cap(params[key], limit)
