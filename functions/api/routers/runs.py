"""Routes of runs (PRODUCT.md §9, §10.5): start, estimate, lists, one run, cancel, checkpoints, diagnostics,
report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.api.http import dump, idempotency_key, ok, ok_list, principal
from functions.api.routers.docs import documented
from functions.api.routers.pagination import Page, PerPage
from tt_core import wiring
from tt_core.models.behavior_specs import RunSummary
from tt_core.models.common import PageQuery
from tt_core.models.estimates import RunEstimateResponse
from tt_core.models.report import RunReport
from tt_core.models.runs import (
    Checkpoint,
    CheckpointDownload,
    RunDetail,
    RunDiagnostics,
    RunListItem,
    StartRunRequest,
)

router = APIGatewayRouter()
View = Annotated[Literal["full", "summary"], Query(description="`full` rows (default) or `summary` rows.")]
# A list row: a run without spec_snapshot and _evals (`view=full`), or a summary row (`view=summary`).
RunRow = RunListItem | RunSummary
# §9.1, §2.4: both refuse a base model whose weights the deployment has not staged, before creating anything.
_NO_WEIGHTS = (
    "`base_model_unavailable`: the deployment has no weights for the spec's base model; the message names "
    "the command that stages them (`tt admin stage-base-model`)."
)
_START_CONFLICTS = (
    f"{_NO_WEIGHTS} `run_limit_reached`: the account already has `max_active_runs` active runs. "
    "`idempotency_key_reused` / `idempotency_key_in_progress`: see `Idempotency-Key`."
)


@router.post(
    "/behavior-specs/<spec_id>/runs", **documented(201, RunDetail, "Start a run", conflicts=_START_CONFLICTS)
)
def start_run(spec_id: str, body: StartRunRequest) -> Response[Any]:
    account_id = principal(router).account_id

    def start() -> tuple[int, Any]:
        return 201, dump(wiring.run_service().start(account_id, spec_id, body))

    result = wiring.idempotency_service().run(
        account_id=account_id,
        scope=f"POST /behavior-specs/{spec_id.strip().lower()}/runs",
        key=idempotency_key(router),
        body=router.current_event.json_body,
        action=start,
    )
    return ok(
        result.body, status=result.status, headers={"Idempotent-Replayed": "true"} if result.replayed else {}
    )


@router.post(
    "/behavior-specs/<spec_id>/runs/estimate",
    **documented(200, RunEstimateResponse, "Estimate a run", conflicts=_NO_WEIGHTS),
)
def estimate_run(spec_id: str, body: StartRunRequest) -> Response[Any]:
    return ok(dump(wiring.run_service().estimate(principal(router).account_id, spec_id, body)))


@router.get("/behavior-specs/<spec_id>/runs", **documented(200, RunRow, "List a spec's runs", paged=True))
def list_spec_runs(
    spec_id: str, page: Page = 1, per_page: PerPage = 20, view: View = "full"
) -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    runs, total = wiring.run_service().list_for_spec(principal(router).account_id, spec_id, query, view)
    return ok_list(runs, total, query)


@router.get("/runs", **documented(200, RunRow, "List runs", paged=True))
def list_runs(page: Page = 1, per_page: PerPage = 20, view: View = "full") -> Response[Any]:
    query = PageQuery(page=page, per_page=per_page)
    runs, total = wiring.run_service().list(principal(router).account_id, query, view)
    return ok_list(runs, total, query)


@router.get("/runs/<run_id>", **documented(200, RunDetail, "Get a run"))
def get_run(run_id: str) -> Response[Any]:
    return ok(dump(wiring.run_service().get(principal(router).account_id, run_id)))


@router.post("/runs/<run_id>/cancel", **documented(200, RunDetail, "Cancel a run"))
def cancel_run(run_id: str) -> Response[Any]:
    return ok(dump(wiring.run_service().cancel(principal(router).account_id, run_id)))


@router.get("/runs/<run_id>/report", **documented(200, RunReport, "Get a run's report"))
def run_report(run_id: str) -> Response[Any]:
    return ok(dump(wiring.run_service().report(principal(router).account_id, run_id)))


@router.get(
    "/runs/<run_id>/checkpoints",
    **documented(200, list[Checkpoint], "List a run's kept epoch checkpoints, newest first"),
)
def list_checkpoints(run_id: str) -> Response[Any]:
    checkpoints = wiring.checkpoint_service().list(principal(router).account_id, run_id)
    return ok([dump(c) for c in checkpoints])


@router.get(
    "/runs/<run_id>/checkpoints/<epoch>/download",
    **documented(200, CheckpointDownload, "Get a signed download URL of an epoch's checkpoint (15 minutes)"),
)
def download_checkpoint(run_id: str, epoch: str) -> Response[Any]:
    return ok(dump(wiring.checkpoint_service().download(principal(router).account_id, run_id, epoch)))


@router.get("/runs/<run_id>/diagnostics", **documented(200, RunDiagnostics, "Get a run's diagnostics"))
def run_diagnostics(run_id: str) -> Response[Any]:
    return ok(dump(wiring.run_service().diagnostics(principal(router).account_id, run_id)))
