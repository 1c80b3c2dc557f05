"""Catalog administration: data models (seed 001's `/api/datamodels`), their schema, custom queries and
snapshot refreshes (seed 004); reports (`/api/reports/`, and seed 001's `/api/documents` over them) with
their revisions; categories."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.datamodels import (
    CustomQueryBody,
    DataModelAdmin,
    DataModelChange,
    DataModelCreate,
    DataModelRename,
    model_view,
    provider_view,
    query_view,
)
from reportserver.domain.documents import (
    CatalogAdmin,
    CategoryChange,
    CategoryCreate,
    DocumentChange,
    DocumentCreate,
    DocumentSave,
    ReportBody,
    ReportChange,
    admin_view,
    document_view,
    layout_of,
)
from reportserver.domain.ports import DataSource
from reportserver.domain.refreshes import Refreshes
from reportserver.http import audit
from reportserver.http.api import (
    caller,
    delete_lock,
    install_error_handlers,
    json_body,
    json_response,
    one_query_value,
)
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import CatalogAdminSettings
from reportserver.sources.registry import SourceOpener
from reportserver.sources.snapshot import describe_on
from reportserver.store.aws import AthenaClients
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.refreshes import DynamoRefreshStore, SqsRefreshQueue
from reportserver.store.secrets import DataSourceSecrets, SecretPasswords

settings = CatalogAdminSettings.from_environ()
catalog = DynamoCatalog(settings.catalog_table)
snapshot_store = DynamoRefreshStore(settings.catalog_table)  # data models' snapshots and their refreshes
models = DataModelAdmin(
    store=catalog,
    passwords=DataSourceSecrets(),
    # A password just changed is read at once.
    open_source=SourceOpener(SecretPasswords(ttl_seconds=0), AthenaClients()),
    secret_prefix=settings.secret_prefix,
    sqlite_files=settings.sqlite_data_models == "on",
    snapshots=snapshot_store,
    describe_snapshot=describe_on,
)
refreshes = Refreshes(
    catalog=catalog,
    store=snapshot_store,
    queue=SqsRefreshQueue(settings.refresh_queue_url),
    clock=lambda: datetime.now(UTC),
)
identity = DynamoIdentityStore(settings.identity_table)
reports = CatalogAdmin(
    store=catalog,
    models=models,
    group_names=lambda: {g.name for g in identity.groups()},
    clock=lambda: datetime.now(UTC),
)
app = Resolver()
install_error_handlers(app)


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, "message": "", **fields}


def _model(source: DataSource) -> dict[str, Any]:
    return {**model_view(source), "providerModel": provider_view(source)}


def _id_parameter() -> str:
    """Seed 001's `?id=` of a category or document delete."""
    return one_query_value(app, "id", "Give the id to delete once, as ?id=")


# Data models


@app.post("/api/datamodels")
def create_model() -> Response[str]:
    source = models.create(caller(app), json_body(app, DataModelCreate))
    metrics.add_metric(name="DataModelsCreated", unit=MetricUnit.Count, value=1)
    return json_response(_ok(dataModel=_model(source)), 201)


@app.get("/api/datamodels")
def list_models() -> Response[str]:
    return json_response(_ok(dataModels=[model_view(s) for s in models.list_models(caller(app))]))


@app.get("/api/datamodels/<model_id>")
def get_model(model_id: str) -> Response[str]:
    source = models.get(caller(app), model_id)
    snapshot = refreshes.snapshot(source)
    return json_response(_ok(dataModel=_model(source) | {"currentSnapshot": snapshot.view() if snapshot else None}))


@app.put("/api/datamodels/<model_id>")
def change_model(model_id: str) -> Response[str]:
    source = models.change(caller(app), model_id, json_body(app, DataModelChange))
    return json_response(_ok(dataModel=_model(source)))


@app.delete("/api/datamodels/<model_id>")
def delete_model(model_id: str) -> Response[str]:
    models.delete(caller(app), model_id, delete_lock(app))
    return json_response(_ok(message=f"Data model {model_id} deleted"))


@app.put("/api/datamodels/<model_id>/rename")
def rename_model(model_id: str) -> Response[str]:
    source = models.rename(caller(app), model_id, json_body(app, DataModelRename))
    return json_response(_ok(dataModel=_model(source)))


@app.get("/api/datamodels/<model_id>/connection")
def model_connection(model_id: str) -> Response[str]:
    return json_response(_ok(providerModel=provider_view(models.get(caller(app), model_id))))


@app.post("/api/datamodels/<model_id>/test")
def test_model(model_id: str) -> Response[str]:
    seconds = models.test(caller(app), model_id)
    milliseconds = round(seconds * 1000, 1)
    return json_response(_ok(message=f"Connected in {milliseconds} ms", elapsedMs=milliseconds))


# Its snapshot, refreshed (seed 004)


@app.post("/api/datamodels/<model_id>/refresh")
def refresh_model(model_id: str) -> Response[str]:
    refresh, new = refreshes.request(caller(app), model_id)
    if not new:
        message = f"Data model {refresh.model_id} is being refreshed already: follow that refresh at its statusUrl"
        return json_response(_ok(message=message, refresh=refreshes.view(refresh)))
    metrics.add_metric(name="DataModelRefreshes", unit=MetricUnit.Count, value=1)
    message = f"Data model {refresh.model_id}'s refresh is queued: follow it at its statusUrl"
    return json_response(_ok(message=message, refresh=refreshes.view(refresh)), 202)


@app.get("/api/datamodels/<model_id>/refreshes")
def model_refreshes(model_id: str) -> Response[str]:
    return json_response(_ok(refreshes=[refreshes.view(r) for r in refreshes.recent(caller(app), model_id)]))


@app.get("/api/datamodels/<model_id>/refreshes/<refresh_id>")
def model_refresh(model_id: str, refresh_id: str) -> Response[str]:
    return json_response(_ok(refresh=refreshes.view(refreshes.status(caller(app), model_id, refresh_id))))


# What the database holds


@app.get("/api/datamodels/<model_id>/tables")
def model_tables(model_id: str) -> Response[str]:
    return json_response(_ok(tables=models.tables(caller(app), model_id)))


@app.get("/api/datamodels/<model_id>/tables/<table_name>/columns")
def table_columns(model_id: str, table_name: str) -> Response[str]:
    return json_response(_ok(columns=models.columns(caller(app), model_id, table_name)))


@app.get("/api/datamodels/<model_id>/procedures")
def model_procedures(model_id: str) -> Response[str]:
    return json_response(_ok(procedures=models.procedures(caller(app), model_id)))


@app.get("/api/datamodels/<model_id>/procedures/<procedure_name>/columns")
def procedure_columns(model_id: str, procedure_name: str) -> Response[str]:
    return json_response(_ok(columns=models.procedure_columns(caller(app), model_id, procedure_name)))


@app.get("/api/datamodels/<model_id>/datamembers")
def data_members(model_id: str) -> Response[str]:
    return json_response(_ok(dataMembers=models.data_members(caller(app), model_id)))


# Custom SQL queries


@app.get("/api/datamodels/<model_id>/queries")
def model_queries(model_id: str) -> Response[str]:
    source = models.get(caller(app), model_id)
    return json_response(_ok(queries=[query_view(q) for q in source.custom_queries]))


@app.post("/api/datamodels/<model_id>/customsqlquery")
def add_custom_query(model_id: str) -> Response[str]:
    source, query = models.save_custom_query(caller(app), model_id, json_body(app, CustomQueryBody))
    return json_response(_ok(optimisticLock=source.version, query=query_view(query)), 201)


@app.get("/api/datamodels/<model_id>/customsqlquery/<name>")
def get_custom_query(model_id: str, name: str) -> Response[str]:
    return json_response(_ok(query=query_view(models.custom_query(caller(app), model_id, name))))


@app.put("/api/datamodels/<model_id>/customsqlquery/<name>")
def change_custom_query(model_id: str, name: str) -> Response[str]:
    body = json_body(app, CustomQueryBody)
    source, query = models.save_custom_query(caller(app), model_id, body, replacing=name)
    return json_response(_ok(optimisticLock=source.version, query=query_view(query)))


# Categories


@app.post("/api/categories")
def create_category() -> Response[str]:
    category = reports.create_category(caller(app), json_body(app, CategoryCreate))
    return json_response(_ok(category=category.view()), 201)


@app.get("/api/categories")
def list_categories() -> Response[str]:
    return json_response(_ok(categories=[c.view() for c in reports.list_categories(caller(app))]))


@app.get("/api/categories/<category_id>")
def get_category(category_id: str) -> Response[str]:
    return json_response(_ok(category=reports.category(caller(app), category_id).view()))


@app.put("/api/categories")
def rename_category() -> Response[str]:
    category = reports.rename_category(caller(app), json_body(app, CategoryChange))
    return json_response(_ok(category=category.view()))


@app.delete("/api/categories")
def delete_category() -> Response[str]:
    category_id = _id_parameter()
    reports.delete_category(caller(app), category_id, delete_lock(app))
    return json_response(_ok(message=f"Category {category_id} deleted"))


# Reports


@app.post("/api/reports")
def create_report() -> Response[str]:
    report = reports.create_report(caller(app), json_body(app, ReportBody))
    metrics.add_metric(name="ReportsCreated", unit=MetricUnit.Count, value=1)
    return json_response(_ok(report=admin_view(report)), 201)


@app.put("/api/reports/<report_id>")
def change_report(report_id: str) -> Response[str]:
    report = reports.change_report(caller(app), report_id, json_body(app, ReportChange))
    return json_response(_ok(report=admin_view(report)))


@app.delete("/api/reports/<report_id>")
def delete_report(report_id: str) -> Response[str]:
    reports.delete_report(caller(app), report_id, delete_lock(app))
    return json_response(_ok(message=f"Report {report_id} deleted"))


# Seed 001's documents (the same reports)


@app.post("/api/documents")
def create_document() -> Response[str]:
    report = reports.create_document(caller(app), json_body(app, DocumentCreate))
    return json_response(_ok(document=document_view(report)), 201)


@app.get("/api/documents")
def list_documents() -> Response[str]:
    return json_response(_ok(documents=[document_view(r) for r in reports.list_documents(caller(app))]))


@app.get("/api/documents/<document_id>")
def get_document(document_id: str) -> Response[str]:
    return json_response(_ok(document=document_view(reports.report(caller(app), document_id))))


@app.put("/api/documents")
def change_document() -> Response[str]:
    report = reports.change_document(caller(app), json_body(app, DocumentChange))
    return json_response(_ok(document=document_view(report)))


@app.delete("/api/documents")
def delete_document() -> Response[str]:
    document_id = _id_parameter()
    reports.delete_report(caller(app), document_id, delete_lock(app))
    return json_response(_ok(message=f"Document {document_id} deleted"))


@app.put("/api/documents/<document_id>/save")
def save_document(document_id: str) -> Response[str]:
    report = reports.save_document(caller(app), document_id, json_body(app, DocumentSave))
    return json_response(_ok(document=document_view(report)))


@app.get("/api/documents/<document_id>/layout")
def document_layout(document_id: str) -> Response[str]:
    report = reports.layout(caller(app), document_id)
    return json_response(_ok(layout=layout_of(report), optimisticLock=report.version))


@app.get("/api/documents/<document_id>/revisions")
def document_revisions(document_id: str) -> Response[str]:
    return json_response(_ok(revisions=[r.view() for r in reports.revisions(caller(app), document_id)]))


@app.get("/api/documents/<document_id>/revisionLayout/<revision_id>")
def revision_layout(document_id: str, revision_id: str) -> Response[str]:
    revision = reports.revision(caller(app), document_id, revision_id)
    return json_response(_ok(layout=layout_of(revision.definition), revision=revision.view()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
