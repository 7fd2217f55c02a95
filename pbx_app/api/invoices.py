"""Monthly invoices (R16): the operator's run, and each customer's invoices as JSON or PDF."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from pbx_app.api.deps import Ctx, CurrentActor, Id, now
from pbx_app.api.errors import AUTHENTICATED, NOT_FOUND, error_responses
from pbx_app.api.models import Items
from pbx_app.invoice_pdf import render
from pbx_app.services import invoices as service

router = APIRouter(tags=["billing"], responses=error_responses(AUTHENTICATED))

Month = Annotated[str, Query(pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
InvoiceNumber = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{6,10}$")]


class InvoiceLine(BaseModel):
    kind: str = Field(description="licences, business_option, cti, efax, flat_rate, "
                      "activation_fees or calls")  # fmt: skip
    text: str
    quantity: str
    amount_cents: int = Field(description="net, whole cents, rounded half up once per line")
    detail: dict[str, Any]


class Invoice(BaseModel):
    id: int
    number: str
    customer_id: int
    customer_name: str
    period: str = Field(description="YYYY-MM")
    issued_at: str
    lines: list[InvoiceLine]
    net_cents: int
    vat_percent: str
    vat_cents: int = Field(description="of the net sum, rounded half up")
    gross_cents: int
    rounding: str


class InvoiceRun(BaseModel):
    period: str
    customers: int
    issued: int = Field(description="invoices issued by this run")
    already_issued: int = Field(description="customers that had their invoice for the month")
    nothing_to_charge: int
    net_cents: int = Field(description="the net sum of the invoices this run issued")


@router.post(
    "/invoice-runs",
    response_model=InvoiceRun,
    responses=error_responses(
        {
            409: "invoice_period_open: the month has not ended yet; conflict: no price list "
            "was in force in it"
        },
    ),
)
def run_invoices(actor: CurrentActor, ctx: Ctx, period: Month) -> dict[str, Any]:
    """Issues the invoices of ``period`` for every customer that has none for it yet (run it
    again and nothing is issued twice)."""
    with ctx.db.transaction() as conn:
        result = service.run(conn, actor, service.month(period), now())
    return result.__dict__


@router.get("/customers/{customer_id}/invoices", response_model=Items[Invoice])
def list_invoices(customer_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        rows = service.list_for_customer(conn, actor, customer_id)
    return {"items": [service.public(r) for r in rows]}


@router.get(
    "/customers/{customer_id}/invoices/{number}",
    response_model=Invoice,
    responses={
        **error_responses(NOT_FOUND),
        200: {"content": {"application/pdf": {}}, "description": "JSON, or PDF with format=pdf"},
    },
)
def get_invoice(
    customer_id: Id,
    number: InvoiceNumber,
    actor: CurrentActor,
    ctx: Ctx,
    format: Annotated[Literal["json", "pdf"], Query()] = "json",
) -> Any:
    with ctx.db.snapshot() as conn:
        invoice = service.public(service.get(conn, actor, customer_id, number))
    if format == "pdf":
        return Response(
            render(invoice),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="invoice-{number}.pdf"'},
        )
    return invoice
