"""Catalog administration: data models (seed 001's `/api/datamodels`), their schema and custom queries."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
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
from reportserver.domain.identity import VersionOnly
from reportserver.domain.ports import DataSource
from reportserver.http import audit
from reportserver.http.api import caller, install_error_handlers, json_body, json_response
from reportserver.observability import logger, metrics
from reportserver.settings import CatalogAdminSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.secrets import DataSourceSecrets, SecretPasswords

settings = CatalogAdminSettings.from_environ()
catalog = DynamoCatalog(settings.catalog_table)
models = DataModelAdmin(
    store=catalog,
    passwords=DataSourceSecrets(),
    open_source=SourceOpener(SecretPasswords(ttl_seconds=0)),  # a password just changed is read at once
    secret_prefix=settings.secret_prefix,
    sqlite_files=settings.sqlite_data_models == "on",
)
app = APIGatewayRestResolver()
install_error_handlers(app)


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, "message": "", **fields}


def _model(source: DataSource) -> dict[str, Any]:
    return {**model_view(source), "providerModel": provider_view(source)}


def _has_body() -> bool:
    return bool((app.current_event.decoded_body or "").strip())


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
    return json_response(_ok(dataModel=_model(models.get(caller(app), model_id))))


@app.put("/api/datamodels/<model_id>")
def change_model(model_id: str) -> Response[str]:
    source = models.change(caller(app), model_id, json_body(app, DataModelChange))
    return json_response(_ok(dataModel=_model(source)))


@app.delete("/api/datamodels/<model_id>")
def delete_model(model_id: str) -> Response[str]:
    body = json_body(app, VersionOnly) if _has_body() else None
    models.delete(caller(app), model_id, body.optimisticLock if body else None)
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
