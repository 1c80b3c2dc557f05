"""Report definitions and data sources in DynamoDB (CatalogTable; see `store.keys`)."""

from __future__ import annotations

from typing import Any

from reportserver.domain.calls import Catalog
from reportserver.domain.errors import AlreadyExists
from reportserver.domain.identity import VersionConflict
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report
from reportserver.store import aws, keys
from reportserver.store.items import from_document, to_document
from reportserver.store.ttl_cache import TtlCache


class DynamoCatalog:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._table.get_item(Key={"pk": pk, "sk": sk}).get("Item")
        return item

    def report_by_id(self, report_id: int) -> Report | None:
        item = self._get(keys.REPORT, keys.numeric_sort_key(report_id))
        return from_document(item["definition"], Report) if item else None

    def report_by_slug(self, slug: str) -> Report | None:
        pointer = self._get(keys.SLUG, slug)
        return self.report_by_id(int(pointer["report_id"])) if pointer else None

    def report_by_field_id(self, field_id: int) -> Report | None:
        pointer = self._get(keys.FIELD, keys.numeric_sort_key(field_id))
        return self.report_by_id(int(pointer["report_id"])) if pointer else None

    def list_reports(self) -> list[Report]:
        found = aws.pages(
            self._table.query, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.REPORT}
        )
        return [from_document(i["definition"], Report) for page in found for i in page.get("Items", [])]

    def data_source(self, data_source_id: str) -> DataSource | None:
        item = self._get(keys.DATASOURCE, data_source_id)
        return from_document(item["definition"], DataSource) if item else None

    def put_data_source(self, definition: DataSource) -> None:
        """Write a data source as it is (tests and seeds; the API goes through the conditional writes)."""
        self._table.put_item(Item=self._source_item(definition))

    @staticmethod
    def _source_item(definition: DataSource) -> dict[str, Any]:
        return {
            "pk": keys.DATASOURCE,
            "sk": definition.id,
            "name": definition.name,
            "version": definition.version,
            "definition": to_document(definition),
        }

    def data_sources(self) -> list[DataSource]:
        found = aws.pages(
            self._table.query, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.DATASOURCE}
        )
        return [from_document(i["definition"], DataSource) for page in found for i in page.get("Items", [])]

    def next_data_source_id(self) -> int:
        return self._next_id("datamodel")

    def create_data_source(self, source: DataSource) -> None:
        try:
            self._table.put_item(Item=self._source_item(source), ConditionExpression="attribute_not_exists(pk)")
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                raise AlreadyExists(f"Data model {source.id} already exists") from None
            raise

    def replace_data_source(self, source: DataSource, previous_version: int) -> None:
        try:
            self._table.put_item(
                Item=self._source_item(source),
                ConditionExpression="attribute_exists(pk) AND version = :previous",
                ExpressionAttributeValues={":previous": previous_version},
            )
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                raise VersionConflict(f"Data model {source.id} has changed or gone since it was read") from None
            raise

    def delete_data_source(self, source: DataSource) -> None:
        try:
            self._table.delete_item(
                Key={"pk": keys.DATASOURCE, "sk": source.id},
                ConditionExpression="version = :version",
                ExpressionAttributeValues={":version": source.version},
            )
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                raise VersionConflict(f"Data model {source.id} has changed or gone since it was read") from None
            raise

    def reports_using(self, data_source_id: str) -> list[str]:
        return sorted(r.slug for r in self.list_reports() if r.data_source_id == data_source_id)

    def _next_id(self, counter: str) -> int:
        response = self._table.update_item(
            Key={"pk": keys.COUNTER, "sk": counter},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"])

    def create_report(self, report: Report) -> Report:
        """Store a new report with fresh numeric ids for it and its fields; its slug must be free."""
        stored = from_document(to_document(report), Report)  # a deep copy to number
        stored.id = self._next_id("report")
        for field in stored.fields:
            field.id = self._next_id("field")
        table = self._table_name
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        "pk": keys.REPORT,
                        "sk": keys.numeric_sort_key(stored.id),
                        "slug": stored.slug,
                        "name": stored.name,
                        "version": stored.version,
                        "definition": to_document(stored),
                    },
                }
            },
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": keys.SLUG, "sk": stored.slug, "report_id": stored.id},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        items += [
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": keys.FIELD, "sk": keys.numeric_sort_key(f.id), "report_id": stored.id},
                }
            }
            for f in stored.fields
        ]
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except Exception as error:
            if aws.error_code(error) == "TransactionCanceledException":
                raise AlreadyExists(f"A report with the slug {stored.slug!r} already exists") from None
            raise
        return stored


class CachedCatalog:
    """Report definitions change rarely: keep what was read for a few seconds per container."""

    def __init__(self, inner: Catalog, ttl_seconds: float) -> None:
        self._inner = inner
        self._cache: TtlCache[object] = TtlCache(ttl_seconds)

    def report_by_id(self, report_id: int) -> Report | None:
        return self._cache.get_or_load(("id", report_id), lambda: self._inner.report_by_id(report_id))  # type: ignore[return-value]

    def report_by_slug(self, slug: str) -> Report | None:
        return self._cache.get_or_load(("slug", slug), lambda: self._inner.report_by_slug(slug))  # type: ignore[return-value]

    def report_by_field_id(self, field_id: int) -> Report | None:
        return self._cache.get_or_load(  # type: ignore[return-value]
            ("field", field_id), lambda: self._inner.report_by_field_id(field_id)
        )

    def list_reports(self) -> list[Report]:
        return self._cache.get_or_load("list", self._inner.list_reports)  # type: ignore[return-value]

    def data_source(self, data_source_id: str) -> DataSource | None:
        return self._cache.get_or_load(  # type: ignore[return-value]
            ("source", data_source_id), lambda: self._inner.data_source(data_source_id)
        )
