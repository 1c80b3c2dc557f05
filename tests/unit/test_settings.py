"""Function settings fail at start when the environment is incomplete."""

import pytest
from reportserver.settings import AuthSettings, ReportsSettings, SettingsError


def test_missing_table_name_fails_loudly_naming_it() -> None:
    with pytest.raises(SettingsError, match="TOKENS_TABLE"):
        AuthSettings.from_environ({})


def test_report_caps_are_read_and_bounded_by_the_lambda_response_limit() -> None:
    names = {"CATALOG_TABLE": "cat", "IDENTITY_TABLE": "ids", "SNAPSHOT_BUCKET": "bucket"}
    settings = ReportsSettings.from_environ(names | {"CALL_MAX_ROWS": "10"})
    assert settings.call_max_rows == 10 and settings.call_max_bytes == 5_000_000
    with pytest.raises(SettingsError, match="CALL_MAX_BYTES"):
        ReportsSettings.from_environ(names | {"CALL_MAX_BYTES": str(7 * 1024 * 1024)})


def test_the_functions_that_read_reports_need_the_bucket_of_the_data_models_snapshots() -> None:
    with pytest.raises(SettingsError, match="SNAPSHOT_BUCKET"):
        ReportsSettings.from_environ({"CATALOG_TABLE": "cat", "IDENTITY_TABLE": "ids"})


def test_the_domains_standard_logging_comes_out_as_the_functions_json_lines() -> None:
    import io
    import json
    import logging

    from reportserver.observability import logger

    # The handler holds whichever stdout it found when the logger was made (pytest's, in a test run),
    # so the test reads the handler's own stream rather than capturing stdout.
    handler = logger.logger_handler
    assert isinstance(handler, logging.StreamHandler)
    seen = io.StringIO()
    before = handler.setStream(seen)
    logger.append_keys(token_name="finance-bot")
    try:
        logging.getLogger("reportserver.domain.exports").info("export requested", extra={"ticket_id": "t-1"})
    finally:
        logger.remove_keys(["token_name"])
        handler.setStream(before)
    line = json.loads(seen.getvalue().strip().splitlines()[-1])
    assert line["message"] == "export requested" and line["ticket_id"] == "t-1"
    assert line["token_name"] == "finance-bot" and line["service"] == "reportserver"
