"""Report definitions and data sources in DynamoDB (CatalogTable; see `store.keys`)."""

from __future__ import annotations

from typing import Any

import msgspec

from reportserver.domain.calls import Catalog
from reportserver.domain.errors import AlreadyExists, InvalidDefinition, VersionConflict
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import Category, Expected, Report, Revision
from reportserver.store import aws, keys
from reportserver.store.items import from_document, to_document
from reportserver.store.ttl_cache import TtlCache

MAX_TRANSACTION_ITEMS = 100
REPORT_COUNT = "reports"  # on a data model's and a category's item: how many reports name it


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
        """Write a data source as it is (tests and seeds; the API goes through the conditional writes),
        keeping the count of the reports that use it."""
        document = to_document(definition)
        self._replace(keys.DATASOURCE, definition.id, definition.name, definition.version, document, None)

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
        """An update, not a put: the count of the reports that use the model stays as it is."""
        self._replace(keys.DATASOURCE, source.id, source.name, source.version, to_document(source), previous_version)

    def delete_data_source(self, source: DataSource) -> None:
        """Delete it while it is at `source.version` and no report uses it (the count the reports'
        own writes keep, in their transactions: a report saved meanwhile makes this fail)."""
        self._delete_unused(keys.DATASOURCE, source.id, source.version, f"Data model {source.id}")

    def _replace(self, pk: str, sk: str, name: str, version: int, document: str, previous_version: int | None) -> None:
        """Set an item's definition, name and version, keeping its other attributes (the count of the
        reports that name it): while `previous_version` is stored, or, given None, whatever is."""
        values: dict[str, Any] = {":definition": document, ":name": name, ":version": version}
        condition: dict[str, Any] = {}
        if previous_version is not None:
            values[":previous"] = previous_version
            condition["ConditionExpression"] = "attribute_exists(pk) AND #version = :previous"
        try:
            self._table.update_item(
                Key={"pk": pk, "sk": sk},
                UpdateExpression="SET #definition = :definition, #name = :name, #version = :version",
                ExpressionAttributeNames={"#definition": "definition", "#name": "name", "#version": "version"},
                ExpressionAttributeValues=values,
                **condition,
            )
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                what = "Data model" if pk == keys.DATASOURCE else "Category"
                raise VersionConflict(f"{what} {sk.lstrip('0')} has changed or gone since it was read") from None
            raise

    def _delete_unused(self, pk: str, sk: str, version: int, what: str, recounted: bool = False) -> None:
        try:
            self._table.delete_item(
                Key={"pk": pk, "sk": sk},
                ConditionExpression="#version = :version AND (attribute_not_exists(#reports) OR #reports = :none)",
                ExpressionAttributeNames={"#version": "version", "#reports": REPORT_COUNT},
                ExpressionAttributeValues={":version": version, ":none": 0},
            )
        except Exception as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise
            item = self._get(pk, sk)
            current = item is not None and int(item.get("version", 0)) == version
            # The count may have drifted (a report saved before counts were kept): count afresh once, and
            # set it, at this version, to what the reports say.
            if current and not recounted and self._recount(pk, sk, version):
                self._delete_unused(pk, sk, version, what, recounted=True)
                return
            if item is not None and int(item.get("version", 0)) == version:
                raise AlreadyExists(
                    f"{what} is used by a report saved since it was read: it cannot be deleted"
                ) from None
            raise VersionConflict(f"{what} has changed or gone since it was read") from None

    def _recount(self, pk: str, sk: str, version: int) -> bool:
        """Set the count to the reports that name the item, at `version`; True if none does."""
        if pk == keys.DATASOURCE:
            using = sum(1 for r in self.list_reports() if r.data_source_id == sk)
        else:
            using = sum(1 for r in self.list_reports() if r.category_id and keys.numeric_sort_key(r.category_id) == sk)
        written = aws.written(
            self._table.update_item,
            Key={"pk": pk, "sk": sk},
            UpdateExpression="SET #reports = :count",
            ConditionExpression="#version = :version",
            ExpressionAttributeNames={"#reports": REPORT_COUNT, "#version": "version"},
            ExpressionAttributeValues={":count": using, ":version": version},
        )
        return written and using == 0

    def _release(self, pk: str, sk: str) -> list[dict[str, Any]]:
        """A report no longer counted at an item: only where the item is and counts it (a report saved
        before counts were kept, or in a category deleted before they were, has nothing to release)."""
        item = self._get(pk, sk)
        if item is None or int(item.get(REPORT_COUNT, 0)) <= 0:
            return []
        update = self._count(pk, sk, -1)
        update["Update"]["ConditionExpression"] = "attribute_exists(pk) AND #reports > :none"
        update["Update"]["ExpressionAttributeValues"][":none"] = 0
        return [update]

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

    def _count(self, pk: str, sk: str, step: int, expected_version: int | None = None) -> dict[str, Any]:
        """A report's use of its data model or category, counted in the report's own transaction: the
        item must exist (and be at the version the report was checked against), and cannot be deleted
        while its count is above zero."""
        condition = "attribute_exists(pk)"
        values: dict[str, Any] = {":step": step}
        if expected_version is not None:
            condition += " AND #version = :expected"
            values[":expected"] = expected_version
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": {"pk": pk, "sk": sk},
                "UpdateExpression": "ADD #reports :step",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#reports": REPORT_COUNT}
                | ({"#version": "version"} if expected_version is not None else {}),
                "ExpressionAttributeValues": values,
            }
        }

    def _check(self, pk: str, sk: str, expected_version: int) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self._table_name,
                "Key": {"pk": pk, "sk": sk},
                "ConditionExpression": "attribute_exists(pk) AND #version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": expected_version},
            }
        }

    def _uses(self, report: Report, step: int, expected: Expected | None) -> list[dict[str, Any]]:
        """The count updates of a report's data model and category (+1 when saved there, -1 when gone)."""
        items = [self._count(keys.DATASOURCE, report.data_source_id, step, expected.model if expected else None)]
        if report.category_id:
            version = expected.category if expected else None
            items.append(self._count(keys.CATEGORY, keys.numeric_sort_key(report.category_id), step, version))
        return items

    def _moves(self, report: Report, previous: Report, expected: Expected | None) -> list[dict[str, Any]]:
        """A change's counts: a report that moved counts at its new model or category and no longer at the
        old; one that stayed is checked against the versions its statements were checked against."""
        items: list[dict[str, Any]] = []
        model_version = expected.model if expected else None
        if report.data_source_id != previous.data_source_id:
            items.append(self._count(keys.DATASOURCE, report.data_source_id, 1, model_version))
            items += self._release(keys.DATASOURCE, previous.data_source_id)
        elif model_version is not None:
            items.append(self._check(keys.DATASOURCE, report.data_source_id, model_version))
        category_version = expected.category if expected else None
        if report.category_id != previous.category_id:
            if report.category_id:
                key = keys.numeric_sort_key(report.category_id)
                items.append(self._count(keys.CATEGORY, key, 1, category_version))
            if previous.category_id:
                items += self._release(keys.CATEGORY, keys.numeric_sort_key(previous.category_id))
        elif report.category_id and category_version is not None:
            items.append(self._check(keys.CATEGORY, keys.numeric_sort_key(report.category_id), category_version))
        return items

    def create_report(
        self, report: Report, revision: Revision | None = None, expected: Expected | None = None
    ) -> Report:
        """Store a new report with fresh numeric ids for it and its fields (and its first revision); its
        slug must be free, and its data model and category must exist (at the `expected` versions)."""
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
        uses = self._uses(stored, 1, expected)
        self._transact(items + uses, f"A report with the slug {stored.slug!r} already exists", counted=len(items))
        return stored

    def replace_report(
        self, report: Report, previous: Report, revision: Revision, expected: Expected | None = None
    ) -> Report:
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
        moves = self._moves(stored, previous, expected)
        taken = f"A report with the slug {stored.slug!r} already exists"
        self._transact(items + moves, taken, stale=0, counted=len(items))
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
        # No longer counted at its model and category (where they are counted: not one written past the API)
        named = [(keys.DATASOURCE, report.data_source_id)]
        if report.category_id:
            named.append((keys.CATEGORY, keys.numeric_sort_key(report.category_id)))
        releases = [update for pk, sk in named for update in self._release(pk, sk)]
        self._transact(items + releases, "", stale=0)
        history = f"{keys.REVISION}{keys.numeric_sort_key(report.id)}"
        for revision in self.revisions(report.id):
            self._table.delete_item(Key={"pk": history, "sk": keys.numeric_sort_key(revision.id)})

    def _transact(
        self, items: list[dict[str, Any]], taken: str, stale: int | None = None, counted: int | None = None
    ) -> None:
        """One transaction; a cancellation is a stale version (its item `stale` failed its condition), a
        data model or category gone or changed (an item from `counted` on failed), or a name taken."""
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
            if counted is not None and "ConditionalCheckFailed" in reasons[counted:]:
                raise VersionConflict(
                    "The report's data model or category was changed or deleted while it was saved: save it again"
                ) from None
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
        key = keys.numeric_sort_key(category.id)
        self._replace(keys.CATEGORY, key, category.name, category.version, to_document(category), previous_version)

    def delete_category(self, category: Category) -> None:
        key = keys.numeric_sort_key(category.id)
        self._delete_unused(keys.CATEGORY, key, category.version, f"Category {category.id}")

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
