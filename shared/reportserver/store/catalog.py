"""Report definitions and data sources in DynamoDB (CatalogTable; see `store.keys`)."""

from __future__ import annotations

from typing import Any

import msgspec

from reportserver.domain.calls import Catalog
from reportserver.domain.documents import Category, Revision
from reportserver.domain.errors import AlreadyExists, InvalidDefinition
from reportserver.domain.identity import VersionConflict
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Report
from reportserver.store import aws, keys
from reportserver.store.items import from_document, to_document
from reportserver.store.ttl_cache import TtlCache

MAX_TRANSACTION_ITEMS = 100


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

    def _report_put(self, report: Report, condition: str, values: dict[str, Any]) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table_name,
            "Item": {
                "pk": keys.REPORT,
                "sk": keys.numeric_sort_key(report.id),
                "slug": report.slug,
                "name": report.name,
                "version": report.version,
                "definition": to_document(report),
            },
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _pointer(self, pk: str, sk: str, report_id: int, condition: str | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table_name, "Item": {"pk": pk, "sk": sk, "report_id": report_id}}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def _delete(self, pk: str, sk: str) -> dict[str, Any]:
        return {"Delete": {"TableName": self._table_name, "Key": {"pk": pk, "sk": sk}}}

    def _revision_put(self, revision: Revision) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table_name,
                "Item": {
                    "pk": f"{keys.REVISION}{keys.numeric_sort_key(revision.report_id)}",
                    "sk": keys.numeric_sort_key(revision.id),
                    "definition": to_document(revision),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def create_report(self, report: Report, revision: Revision | None = None) -> Report:
        """Store a new report with fresh numeric ids for it and its fields (and its first revision); its
        slug must be free."""
        stored = from_document(to_document(report), Report)  # a deep copy to number
        stored.id = self._next_id("report")
        stored.version = max(stored.version, 1)
        for field in stored.fields:
            field.id = self._next_id("field")
        items = [
            self._report_put(stored, "attribute_not_exists(pk)", {}),
            self._pointer(keys.SLUG, stored.slug, stored.id, "attribute_not_exists(pk)"),
            *(self._pointer(keys.FIELD, keys.numeric_sort_key(f.id), stored.id) for f in stored.fields),
        ]
        if revision is not None:
            items.append(self._revision_put(msgspec.structs.replace(revision, report_id=stored.id, definition=stored)))
        self._transact(items, f"A report with the slug {stored.slug!r} already exists")
        return stored

    def replace_report(self, report: Report, previous: Report, revision: Revision) -> Report:
        """Write `report` over `previous` while `previous.version` is stored: its slug pointer moved with
        its name, its new fields numbered, its removed fields' pointers gone, and its revision kept."""
        stored = from_document(to_document(report), Report)
        for field in stored.fields:
            if not field.id:
                field.id = self._next_id("field")
        items = [self._report_put(stored, "version = :previous", {":previous": previous.version})]
        if stored.slug != previous.slug:
            items.append(self._pointer(keys.SLUG, stored.slug, stored.id, "attribute_not_exists(pk)"))
            items.append(self._delete(keys.SLUG, previous.slug))
        kept = {f.id for f in stored.fields}
        items += [self._delete(keys.FIELD, keys.numeric_sort_key(f.id)) for f in previous.fields if f.id not in kept]
        before = {f.id for f in previous.fields}
        new_fields = [f for f in stored.fields if f.id not in before]
        items += [self._pointer(keys.FIELD, keys.numeric_sort_key(f.id), stored.id) for f in new_fields]
        items.append(self._revision_put(msgspec.structs.replace(revision, definition=stored)))
        self._transact(items, f"A report with the slug {stored.slug!r} already exists", stale=0)
        return stored

    def delete_report(self, report: Report) -> None:
        """The report, its slug and field pointers, while it is at `report.version`; its revisions after."""
        delete = self._delete(keys.REPORT, keys.numeric_sort_key(report.id))
        delete["Delete"] |= {
            "ConditionExpression": "version = :version",
            "ExpressionAttributeValues": {":version": report.version},
        }
        items = [
            delete,
            self._delete(keys.SLUG, report.slug),
            *(self._delete(keys.FIELD, keys.numeric_sort_key(f.id)) for f in report.fields),
        ]
        self._transact(items, "", stale=0)
        history = f"{keys.REVISION}{keys.numeric_sort_key(report.id)}"
        for revision in self.revisions(report.id):
            self._table.delete_item(Key={"pk": history, "sk": keys.numeric_sort_key(revision.id)})

    def _transact(self, items: list[dict[str, Any]], taken: str, stale: int | None = None) -> None:
        """One transaction; a cancellation is a stale version (its item `stale` failed its condition)
        or a name taken."""
        if len(items) > MAX_TRANSACTION_ITEMS:  # DynamoDB's limit; a report has at most 45 fields
            raise InvalidDefinition("The change touches too many fields at once: save it in two steps")
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except Exception as error:
            if aws.error_code(error) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in getattr(error, "response", {}).get("CancellationReasons", [])]
            if stale is not None and len(reasons) > stale and reasons[stale] == "ConditionalCheckFailed":
                raise VersionConflict("The report has changed or gone since it was read: read it again") from None
            raise AlreadyExists(taken or "The report has changed since it was read") from None

    def revisions(self, report_id: int) -> list[Revision]:
        found = aws.pages(
            self._table.query,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": f"{keys.REVISION}{keys.numeric_sort_key(report_id)}"},
        )
        return [from_document(i["definition"], Revision) for page in found for i in page.get("Items", [])]

    def revision(self, report_id: int, revision_id: int) -> Revision | None:
        item = self._get(f"{keys.REVISION}{keys.numeric_sort_key(report_id)}", keys.numeric_sort_key(revision_id))
        return from_document(item["definition"], Revision) if item else None

    # Categories

    def next_category_id(self) -> int:
        return self._next_id("category")

    def categories(self) -> list[Category]:
        found = aws.pages(
            self._table.query, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.CATEGORY}
        )
        return [from_document(i["definition"], Category) for page in found for i in page.get("Items", [])]

    def category(self, category_id: int) -> Category | None:
        item = self._get(keys.CATEGORY, keys.numeric_sort_key(category_id))
        return from_document(item["definition"], Category) if item else None

    def _category_item(self, category: Category) -> dict[str, Any]:
        return {
            "pk": keys.CATEGORY,
            "sk": keys.numeric_sort_key(category.id),
            "version": category.version,
            "definition": to_document(category),
        }

    def create_category(self, category: Category) -> None:
        self._conditional_put(self._category_item(category), "attribute_not_exists(pk)", {}, AlreadyExists)

    def replace_category(self, category: Category, previous_version: int) -> None:
        self._conditional_put(
            self._category_item(category), "version = :previous", {":previous": previous_version}, VersionConflict
        )

    def delete_category(self, category: Category) -> None:
        try:
            self._table.delete_item(
                Key={"pk": keys.CATEGORY, "sk": keys.numeric_sort_key(category.id)},
                ConditionExpression="version = :version",
                ExpressionAttributeValues={":version": category.version},
            )
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                raise VersionConflict(f"Category {category.id} has changed or gone since it was read") from None
            raise

    def _conditional_put(
        self, item: dict[str, Any], condition: str, values: dict[str, Any], refusal: type[Exception]
    ) -> None:
        try:
            if values:
                self._table.put_item(Item=item, ConditionExpression=condition, ExpressionAttributeValues=values)
            else:
                self._table.put_item(Item=item, ConditionExpression=condition)
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                raise refusal("It has changed, gone, or exists already since it was read") from None
            raise


class CachedCatalog:
    """Report definitions change rarely: keep what was read for a few seconds per container. A change
    made over the admin API reaches a warm container within `ttl_seconds` (CATALOG_CACHE_SECONDS); a
    report just defined is found at once (a miss is never kept), and so is the list, which is read
    anew each time (`/api/reports/` and finding a report by its display name, not the calls' path)."""

    def __init__(self, inner: Catalog, ttl_seconds: float) -> None:
        self._inner = inner
        self._cache: TtlCache[object] = TtlCache(ttl_seconds, keep_misses=False)

    def report_by_id(self, report_id: int) -> Report | None:
        return self._cache.get_or_load(("id", report_id), lambda: self._inner.report_by_id(report_id))  # type: ignore[return-value]

    def report_by_slug(self, slug: str) -> Report | None:
        return self._cache.get_or_load(("slug", slug), lambda: self._inner.report_by_slug(slug))  # type: ignore[return-value]

    def report_by_field_id(self, field_id: int) -> Report | None:
        return self._cache.get_or_load(  # type: ignore[return-value]
            ("field", field_id), lambda: self._inner.report_by_field_id(field_id)
        )

    def list_reports(self) -> list[Report]:
        return self._inner.list_reports()

    def data_source(self, data_source_id: str) -> DataSource | None:
        return self._cache.get_or_load(  # type: ignore[return-value]
            ("source", data_source_id), lambda: self._inner.data_source(data_source_id)
        )
