"""Runs in the table: the run item, a per-spec index item, per-spec stats and the account's active slots.

- `RUN#<id>`: the run (its spec snapshot packed as a document), listed newest first through GSI1.
- `SPEC#<spec>#RUN#<number>`: points at the run, so a spec's runs are one query, newest first.
- `SPECSTATS#<spec>`: the run-number sequence (atomic ADD, never reused), the run count, the newest
  run and the newest completed run's score.
- `ACTIVE_RUNS`: the set of the account's active run ids; a transaction adds a run only while the set
  is smaller than the limit, and a run's terminal transition removes it in the same transaction.
- `DEPLOYMENT / THROUGHPUT#<base model>#…`: minutes per million token-epochs of completed runs, the
  estimate's history (deployment-wide, like the operator's throughput table it refines).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tt_core.adapters.dynamodb.documents import DocumentPacker
from tt_core.adapters.dynamodb.table import DynamoTable, account_pk, readable
from tt_core.models.common import PageQuery, format_timestamp
from tt_core.models.runs import RunRecord, SpecRunStats
from tt_core.schema import ACCOUNTS_PREFIX, GSI1_PARTITION_KEY, GSI1_SORT_KEY

ACTIVE_SK = "ACTIVE_RUNS"
_DOCUMENT_FIELDS = ("spec_snapshot", "eval_summary", "training")
DEPLOYMENT_PK = "DEPLOYMENT"
_THROUGHPUT_SAMPLES = 200


def _run_sk(run_id: str) -> str:
    return f"RUN#{run_id}"


def _pointer_sk(spec_id: str, run_number: int) -> str:
    return f"SPEC#{spec_id}#RUN#{run_number:08d}"


def _stats_sk(spec_id: str) -> str:
    return f"SPECSTATS#{spec_id}"


class DynamoRunRepository:
    def __init__(self, table: DynamoTable, packer: DocumentPacker) -> None:
        self._table = table
        self._packer = packer

    # --- items ------------------------------------------------------------------------------
    def _item(self, run: RunRecord) -> dict[str, Any]:
        pk = account_pk(run.account_id)
        data = run.model_dump()
        # Free-form JSON (nulls included) travels as one packed document, not as item attributes.
        document = {field: data.pop(field) for field in _DOCUMENT_FIELDS}
        object_key = f"{ACCOUNTS_PREFIX}{run.account_id}/runs/{run.id}/document-v{run.version}.json.gz"
        return {
            "pk": pk,
            "sk": _run_sk(run.id),
            GSI1_PARTITION_KEY: f"{pk}#RUNS",
            GSI1_SORT_KEY: f"{format_timestamp(run.created_at)}#{run.id}",
            **data,
            **self._packer.pack(document, object_key),
        }

    def _record(self, item: Mapping[str, Any]) -> RunRecord:
        return RunRecord.model_validate({**item, **self._packer.unpack(item)})

    # --- reads ------------------------------------------------------------------------------
    def get(self, account_id: str, run_id: str) -> RunRecord | None:
        item = self._table.get(account_pk(account_id), _run_sk(run_id))
        return self._record(item) if item else None

    def list_page(self, account_id: str, page: PageQuery) -> tuple[list[RunRecord], int]:
        items, total = self._table.page_by_index(f"{account_pk(account_id)}#RUNS", page)
        return readable(items, self._record), total

    def _pointers(self, account_id: str, spec_id: str) -> list[dict[str, Any]]:
        return list(
            self._table.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": account_pk(account_id), ":prefix": f"SPEC#{spec_id}#RUN#"},
                ScanIndexForward=False,
            )
        )

    def _runs(self, account_id: str, run_ids: list[str]) -> list[RunRecord]:
        pk = account_pk(account_id)
        found = self._table.batch_get([(pk, _run_sk(run_id)) for run_id in run_ids])
        keys = [(pk, _run_sk(run_id)) for run_id in run_ids]
        return [self._record(found[key]) for key in keys if key in found]

    def list_for_spec(self, account_id: str, spec_id: str, page: PageQuery) -> tuple[list[RunRecord], int]:
        """The spec's runs, newest (highest run_number) first."""
        pointers = self._pointers(account_id, spec_id)
        wanted = pointers[page.offset : page.offset + page.per_page]
        return self._runs(account_id, [p["run_id"] for p in wanted]), len(pointers)

    def active_run_ids(self, account_id: str) -> set[str]:
        item = self._table.get(account_pk(account_id), ACTIVE_SK)
        return set(item.get("run_ids", set())) if item else set()

    def active_runs_everywhere(self) -> list[tuple[str, str]]:
        """(account id, run id) of every active run: a scan, for the local stack's restart."""
        found: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": {"S": ACTIVE_SK}},
        }
        while True:
            response = self._table.client.scan(**kwargs)
            for item in response.get("Items", []):
                account_id = item["pk"]["S"].removeprefix("ACCOUNT#")
                found.extend((account_id, run_id) for run_id in item.get("run_ids", {}).get("SS", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def spec_stats(self, account_id: str, spec_ids: list[str]) -> dict[str, SpecRunStats]:
        pk = account_pk(account_id)
        stats = self._table.batch_get([(pk, _stats_sk(spec_id)) for spec_id in spec_ids])
        latest_ids = {
            spec_id: item["latest_run_id"]
            for spec_id in spec_ids
            if (item := stats.get((pk, _stats_sk(spec_id)))) and item.get("latest_run_id")
        }
        latest = {run.id: run for run in self._runs(account_id, list(latest_ids.values()))}
        result = {}
        for spec_id in spec_ids:
            item = stats.get((pk, _stats_sk(spec_id))) or {}
            run = latest.get(latest_ids.get(spec_id, ""))
            result[spec_id] = SpecRunStats(
                run_count=int(item.get("run_count", 0)),
                latest_run_status=run.status if run else None,
                latest_run_score=item.get("latest_score"),
            )
        return result

    # --- writes -----------------------------------------------------------------------------
    def next_run_number(self, account_id: str, spec_id: str) -> int:
        """1 + the highest number the spec ever had: an atomic counter, so a number is never reused."""
        response = self._table.client.update_item(
            TableName=self._table.name,
            Key={"pk": {"S": account_pk(account_id)}, "sk": {"S": _stats_sk(spec_id)}},
            UpdateExpression="ADD run_number_seq :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["run_number_seq"]["N"])

    def create(self, run: RunRecord, max_active: int) -> bool:
        """Stores a new run if the account has a free active slot; False when it has none."""
        pk = account_pk(run.account_id)
        item = self._item(run)
        created = self._table.transact(
            {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"Item": {"pk": pk, "sk": _pointer_sk(run.behavior_spec_id, run.run_number),
                              "run_id": run.id}}},
            {
                "Update": {
                    "Key": {"pk": pk, "sk": ACTIVE_SK},
                    "UpdateExpression": "ADD run_ids :run",
                    "ConditionExpression": "attribute_not_exists(run_ids) OR size(run_ids) < :max",
                    "ExpressionAttributeValues": {":run": {run.id}, ":max": max_active},
                }
            },
            {
                "Update": {
                    "Key": {"pk": pk, "sk": _stats_sk(run.behavior_spec_id)},
                    "UpdateExpression": "ADD run_count :one SET latest_run_id = :run_id",
                    "ExpressionAttributeValues": {":one": 1, ":run_id": run.id},
                }
            },
        )  # fmt: skip
        if not created:
            self._packer.discard(item)
        return created

    def save(self, run: RunRecord, expected_version: int) -> bool:
        """Stores `run` if the stored version is still `expected_version`; a run that leaves the active
        statuses gives its slot back in the same transaction."""
        item = self._item(run)
        values = {":v": expected_version}
        if run.active:
            saved = self._table.put(item, "version = :v", values)
        else:
            saved = self._table.transact(
                {"Put": {"Item": item, "ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": values}},
                {
                    "Update": {
                        "Key": {"pk": account_pk(run.account_id), "sk": ACTIVE_SK},
                        "UpdateExpression": "DELETE run_ids :run",
                        "ExpressionAttributeValues": {":run": {run.id}},
                    }
                },
            )  # fmt: skip
        if not saved and "doc_key" in item:
            self._packer.discard(item)
        return saved

    def record_score(self, account_id: str, spec_id: str, run_number: int, score: float | None) -> None:
        """The newest completed run's avg_score (`_latest_run_score`); an older run never overwrites it."""
        self._table.update(
            account_pk(account_id),
            _stats_sk(spec_id),
            "SET latest_score = :s, latest_completed_number = :n",
            {":s": score, ":n": run_number},
            condition="attribute_not_exists(latest_completed_number) OR latest_completed_number < :n",
            keep_nulls=True,
        )

    def delete_spec_runs(self, account_id: str, spec_id: str) -> list[RunRecord]:
        """Removes the spec's runs, their index items and stats; returns the runs that were removed."""
        pk = account_pk(account_id)
        pointers = self._pointers(account_id, spec_id)
        runs = self._runs(account_id, [p["run_id"] for p in pointers])
        for run in runs:
            item = self._table.get(pk, _run_sk(run.id))
            self._table.delete(pk, _run_sk(run.id))
            self._packer.discard(item)
            if run.active:  # its slot is free again
                self._table.update(pk, ACTIVE_SK, "DELETE run_ids :run", {":run": {run.id}})
        for pointer in pointers:
            self._table.delete(pk, pointer["sk"])
        self._table.delete(pk, _stats_sk(spec_id))
        return runs

    # --- estimate history -------------------------------------------------------------------
    def add_throughput_sample(self, base_model: str, run_id: str, at: str, rate: float) -> None:
        self._table.put({"pk": DEPLOYMENT_PK, "sk": f"THROUGHPUT#{base_model}#{at}#{run_id}", "rate": rate})

    def throughput_samples(self, base_model: str | None = None) -> list[float]:
        """The newest samples for one base model, or for all models."""
        prefix = f"THROUGHPUT#{base_model}#" if base_model else "THROUGHPUT#"
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": DEPLOYMENT_PK, ":prefix": prefix},
            ScanIndexForward=False,
        )
        samples = []
        for item in items:
            samples.append(float(item["rate"]))
            if len(samples) >= _THROUGHPUT_SAMPLES and base_model:
                break
        return samples
