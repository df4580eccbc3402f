"""No input makes the sync API answer 500: random JSON at every kind's endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.records import PUBLIC_KINDS, SPECS

# Any JSON value (JSON has no NaN or Infinity; those are tested as raw bodies elsewhere).
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = sorted({name for kind in PUBLIC_KINDS for name in SPECS[kind].model.model_fields})


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from([k.value for k in PUBLIC_KINDS]))
    if draw(st.booleans()):
        return kind, draw(json_values)
    keys = draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True))
    body = {key: draw(json_values | st.text(max_size=12)) for key in keys}
    if draw(st.booleans()):
        body[SPECS[next(k for k in PUBLIC_KINDS if k.value == kind)].id_field] = draw(
            st.text(min_size=1, max_size=12) | st.integers()
        )
    return kind, body


def test_random_bodies_never_answer_500(client, services) -> None:
    loop = asyncio.get_event_loop()

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(bodies())
    def check(case: tuple[str, Any]) -> None:
        kind, body = case
        response = loop.run_until_complete(
            client.post(f"/api/crm/sync/{kind}", json=body, headers={"Prefer": "respond-async"})
        )
        assert response.status_code < 500, (kind, body, response.text)
        assert response.headers["content-type"].startswith("application/json")

    check()
