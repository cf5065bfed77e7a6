"""The runbook's erasure SQL, run as written as the owner, on a mentor with every
kind of record: it removes them all, and nobody else's."""

from __future__ import annotations

import re
import uuid

from tests.builders import (
    SERVICE_ROLE,
    call_rpc,
    create_mentor,
    days_from_today,
    finish_run,
    pause_as_the_job,
    start_run,
    value_of,
)
from tools.paths import PROJECT_ROOT


def erasure_sql(mentor_id: uuid.UUID) -> str:
    runbook = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
    block = re.search(r"<!-- erasure: begin -->\s*```sql\n(.*?)```\s*<!-- erasure: end -->", runbook, re.S)
    assert block, "docs/runbook.md has no erasure block"
    # The test's transaction stands in for the block's own begin and commit.
    statements = re.sub(r"^(begin|commit);\n", "", block.group(1), flags=re.M)
    return statements.replace("<mentor id>", str(mentor_id))


def records_of(tx, mentor_id: uuid.UUID) -> int:
    return value_of(
        tx,
        "select (select count(*) from public.certification_expiry_audit where mentor_id = %(m)s)"
        " + (select count(*) from public.certification_renewals where mentor_id = %(m)s)"
        " + (select count(*) from public.mentor_status_history where mentor_id = %(m)s)"
        " + (select count(*) from public.peer_mentors where id = %(m)s)",
        {"m": mentor_id},
    )


def test_the_erasure_removes_every_record_of_one_mentor_and_nothing_else(tx, organization_id):
    gone, kept = (create_mentor(tx, organization_id, expiry=days_from_today(-2)) for _ in range(2))
    run_id = start_run(tx)
    for mentor_id in (gone, kept):
        pause_as_the_job(tx, run_id, mentor_id, days_from_today(-2))
        call_rpc(
            tx,
            SERVICE_ROLE,
            "record_certification_renewal",
            p_mentor_id=mentor_id,
            p_new_expiry_date=days_from_today(9),
        )
    finish_run(tx, run_id)
    assert records_of(tx, gone) == records_of(tx, kept) == 4

    tx.execute(erasure_sql(gone))

    assert (records_of(tx, gone), records_of(tx, kept)) == (0, 4)
