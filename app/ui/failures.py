"""Failures: failed and dead jobs grouped by provider and reason; retry a group or picked jobs,
and watch the retried ones move to synced."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from app.db import transaction
from app.deps import ServicesDep
from app.errors import InvalidInput
from app.ops.failures import find_failures, retry_failures
from app.ops.logs import RetryStatus, check_provider
from app.records import Kind
from app.sync.service import record_status
from app.ui.records import STOP_POLLING
from app.ui.web import CheckedDep, OperatorDep, UiRoute, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.get("/failures")
async def failures(request: Request, services: ServicesDep, who: OperatorDep) -> Response:
    async with services.sessions() as session:
        found = await find_failures(session)
    return render(request, "failures.html", {"page": "failures", "failures": found}, who=who)


@router.post("/failures/retry")
async def retry(
    request: Request,
    services: ServicesDep,
    who: CheckedDep,
    job: Annotated[list[int], Form(description="picked jobs")] = [],  # noqa: B006
    provider: Annotated[str | None, Form(max_length=32)] = None,
    status: Annotated[Literal["failed", "dead"] | None, Form()] = None,
    reason: Annotated[str | None, Form(max_length=10_000)] = None,
) -> Response:
    """Either a group (provider, status and reason) or the picked jobs (`job`, repeated)."""
    if not job and not (provider and status):
        raise InvalidInput("job", "pick at least one job, or retry a whole group")
    if not job:
        check_provider(provider, services.settings.providers)
    async with transaction(services.sessions) as session:
        if job:
            retried = await retry_failures(session, job_ids=job)
        else:
            group: list[RetryStatus] = [status] if status else []
            retried = await retry_failures(
                session, statuses=group, provider=provider, reason=reason
            )
    if retried.requeued:
        services.kick()
    async with services.sessions() as session:
        found = await find_failures(session)
    context = {"failures": found, "retried": retried}
    return render(request, "_failures_body.html", context, who=who)


@router.get("/failures/follow")
async def follow(
    request: Request,
    services: ServicesDep,
    who: OperatorDep,
    kind: Kind,
    id: str,
    provider: str,
) -> Response:
    """One retried job's record at one provider, polled until it is no longer pending."""
    status = await record_status(services, kind, id)
    state = status.providers.get(provider)
    shown = state.status if state else "unknown"
    return render(
        request,
        "_follow.html",
        {"state": state, "shown": shown, "kind": kind.value, "id": id, "provider": provider},
        who=who,
        status_code=200 if shown == "pending" else STOP_POLLING,
    )
