"""Template routes (admin only): register, list, inspect, acknowledge findings, preview."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.audit.refusals import audited_refusal
from app.auth.dependencies import AdminDep
from app.db import SessionDep, read_scope, session_scope, utcnow
from app.dependencies import SettingsDep
from app.errors import AppError
from app.ids import DbId
from app.messaging.client import GraphApiError
from app.templates import acknowledgements, parameters, service, submission
from app.templates.schemas import (
    AcknowledgementCreate,
    TemplateCreate,
    TemplatePreview,
    TemplatePublic,
    TemplateSubmission,
    TemplateSubmit,
    TemplateUpdate,
)

router = APIRouter(prefix="/api/v1/templates", tags=["Templates"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplatePublic,
    responses={
        409: {"description": "a template with this name and language exists"},
        422: {"description": "a link in the body (with positions), or placeholders mismatch"},
    },
)
def create_template(body: TemplateCreate, session: SessionDep, actor: AdminDep) -> TemplatePublic:
    """Register a template by hand (SANDBOX, or APPROVED to mirror one Meta approved).

    Links are refused; other neutrality findings are shown and block use until acknowledged.
    """
    with audited_refusal(
        session, actor, "template.create", object_type="template", object_id=body.name
    ):
        template = service.register(
            session,
            actor=actor,
            name=body.name,
            language=body.language,
            category=body.category,
            body=body.body,
            parameters=[p.model_dump(exclude_none=True) for p in body.parameters],
            status=body.status,
        )
    return service.to_public(template)


@router.get("", response_model=list[TemplatePublic])
def list_templates(session: SessionDep, actor: AdminDep) -> list[TemplatePublic]:
    """Every template with its findings and whether a campaign may use it."""
    return [service.to_public(t) for t in service.list_templates(session)]


@router.get("/{template_id}", response_model=TemplatePublic)
def get_template(template_id: DbId, session: SessionDep, actor: AdminDep) -> TemplatePublic:
    """One template with its findings, acknowledgements and usability."""
    return service.to_public(service.get(session, template_id=template_id))


@router.patch(
    "/{template_id}",
    response_model=TemplatePublic,
    responses={409: {"description": "body or category of a template synced from Meta"}},
)
def update_template(
    template_id: DbId, body: TemplateUpdate, session: SessionDep, actor: AdminDep
) -> TemplatePublic:
    """Change body, parameters or category; a changed body clears every acknowledgement."""
    template = service.get(session, template_id=template_id)
    with audited_refusal(
        session, actor, "template.update", object_type="template", object_id=template_id
    ):
        service.update(
            session,
            actor=actor,
            template=template,
            body=body.body,
            parameters=(
                None
                if body.parameters is None
                else [p.model_dump(exclude_none=True) for p in body.parameters]
            ),
            category=body.category,
        )
    return service.to_public(template)


@router.post(
    "/{template_id}/acknowledgements",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplatePublic,
    responses={
        409: {"description": "already acknowledged"},
        422: {"description": "no such finding, or a link (never acknowledgeable)"},
    },
)
def acknowledge_finding(
    template_id: DbId, body: AcknowledgementCreate, session: SessionDep, actor: AdminDep
) -> TemplatePublic:
    """Acknowledge one neutrality finding with a reason (audited as `template.acknowledge`)."""
    template = service.get(session, template_id=template_id)
    with audited_refusal(
        session, actor, "template.acknowledge", object_type="template", object_id=template_id
    ):
        acknowledgements.acknowledge(
            session,
            actor=actor,
            template=template,
            finding_index=body.finding_index,
            reason=body.reason,
        )
    return service.to_public(template)


@router.get(
    "/{template_id}/preview",
    response_model=TemplatePreview,
    responses={422: {"description": "a value is missing or not neutral"}},
)
def preview_template(
    template_id: DbId,
    session: SessionDep,
    actor: AdminDep,
    settings: SettingsDep,
    campaign_id: Annotated[DbId | None, Query()] = None,
) -> TemplatePreview:
    """The message as an employee would read it.

    With `campaign_id`: rendered with that campaign's window and values. Without it: sample
    values (window 1 August – 31 October of this year, e.g. "31 Oktober 2026"), the configured
    institution name, and `[key]` for any other campaign-specific value.
    """
    template = service.get(session, template_id=template_id)
    return parameters.preview(
        session, template=template, campaign_id=campaign_id, settings=settings
    )


@router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "a campaign uses this template"}},
)
def delete_template(template_id: DbId, session: SessionDep, actor: AdminDep) -> Response:
    """Delete a template that no campaign uses."""
    template = service.get(session, template_id=template_id)
    with audited_refusal(
        session, actor, "template.delete", object_type="template", object_id=template_id
    ):
        service.delete(session, actor=actor, template=template)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{template_id}/submit",
    response_model=TemplateSubmission,
    responses={
        409: {"description": "already submitted, or not a template registered here"},
        422: {"description": "not usable (findings, links), or no time-to-live can be set"},
        502: {"description": "Meta refused or did not answer"},
    },
)
async def submit_template(
    template_id: DbId,
    body: TemplateSubmit,
    request: Request,
    actor: AdminDep,
    settings: SettingsDep,
) -> TemplateSubmission:
    """Submit a template to Meta for review as UTILITY, with examples and a time-to-live.

    The time-to-live is the campaign's send window (30 s to 12 h): a reminder Meta cannot
    deliver while the window is open is dropped instead of arriving late. Meta's verdict
    arrives by webhook; campaigns can use the template once it is APPROVED.
    """
    engine = request.app.state.engine

    def prepare() -> submission.Submission:
        # Short transactions of their own: none may stay open while Meta is called.
        with read_scope(engine) as session:
            template = service.get(session, template_id=template_id)
            return submission.prepare(
                session,
                template=template,
                campaign_id=body.campaign_id,
                ttl_seconds=body.ttl_seconds,
                settings=settings,
            )

    prepared = await run_in_threadpool(prepare)
    messenger = getattr(request.app.state, "whatsapp", None)
    if messenger is None:
        raise AppError("WhatsApp is not connected yet", code="not_ready", status_code=503)
    try:
        created = await messenger.account().create_template(prepared.body)
    except GraphApiError as exc:
        why = exc.result.error_details or exc.result.error_code
        raise AppError(
            f"Meta refused the template: {exc.result.reason} ({why})",
            code="meta_refused",
            status_code=502,
        ) from exc

    def record() -> TemplateSubmission:
        # Its own transaction: Meta's verdict may have been applied since this request began.
        with session_scope(engine) as fresh:
            recorded = submission.record(
                fresh,
                actor=actor,
                template_id=template_id,
                submission=prepared,
                created=created,
                now=utcnow(),
            )
            return TemplateSubmission(
                template=service.to_public(recorded),
                meta_template_id=recorded.meta_template_id,
                status=recorded.status,
                category=recorded.category,
                ttl_seconds=prepared.ttl_seconds,
                examples=prepared.examples,
            )

    return await run_in_threadpool(record)
