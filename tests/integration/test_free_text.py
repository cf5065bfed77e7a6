"""Whatever text a caller sends as a reason or a request id, through the API: never a
5xx, and nothing stored that holds a control, line-separator or bidi character."""

from __future__ import annotations

import re
import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import create_mentor, value_of

UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from("a \n\t\r\u202e\u2066\u2028\x1b\x85.:/"), max_size=40),
    st.sampled_from(["CERTIFICATION_EXPIRY:x", " certification_expiry:y", "certification_expired", "x" * 501]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reason=TEXT, request_id=TEXT)
def test_any_reason_or_request_id_is_refused_clearly_or_stored_printable(stack, autocommit_db, reason, request_id):
    mentor_id = create_mentor(autocommit_db, uuid.uuid4())
    answer = httpx.post(
        f"{stack.url}/rest/v1/rpc/update_mentor_status",
        headers={"apikey": stack.secret_key, "Authorization": f"Bearer {stack.secret_key}"},
        json={"p_mentor_id": str(mentor_id), "p_new_status": "paused", "p_reason": reason, "p_request_id": request_id},
        timeout=10,
    )
    assert answer.status_code < 500, answer.text
    stored = value_of(
        autocommit_db,
        "select coalesce(string_agg(coalesce(reason, '') || coalesce(request_id, ''), ''), '')"
        " from public.mentor_status_history where mentor_id = %s",
        (mentor_id,),
    )
    if answer.status_code == 200:
        assert not UNPRINTABLE.search(stored)
    else:
        assert (answer.status_code, stored) == (400, "")
