"""The inbox: a message is applied once per handler, however often it comes,
in the same transaction as its record; twins in one batch count once."""
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import MetaData, select

from shared.contracts import RegistrationCancelled, envelope
from shared.db import transaction
from shared.inbox import inbox_table, process_batch, process_once
from tests.support.databases import migrated_table

TABLE = inbox_table(MetaData())


@pytest.fixture
def db(service_db):
    return service_db("capacity")


def body(registration_id):
    return envelope(RegistrationCancelled(registration_id=registration_id, event_slug="conf"), "corr-1")


def absorbed(handler):
    return REGISTRY.get_sample_value("evreg_duplicates_absorbed_total", {"handler": handler}) or 0


def test_a_message_is_applied_once_per_handler(db):
    message = body("r1")
    applied = []

    def apply(session, cancelled):
        applied.append(cancelled.registration_id)
    before = absorbed("inbox_test_once")
    first = process_once(db, TABLE, message, RegistrationCancelled, "inbox_test_once", apply)
    again = process_once(db, TABLE, message, RegistrationCancelled, "inbox_test_once", apply)
    other = process_once(db, TABLE, message, RegistrationCancelled, "inbox_test_other", apply)
    assert first[1] is True and again[1] is False and other[1] is True
    assert first[0].registration_id == "r1"
    assert applied == ["r1", "r1"]                  # once for each handler
    assert absorbed("inbox_test_once") == before + 1


def test_twins_in_one_batch_are_applied_once_in_arrival_order(db):
    a, b, c, d = (body(f"r{n}") for n in range(4))
    batches = []

    def apply(session, fresh):
        batches.append([(item.message.registration_id, item.correlation_id) for item in fresh])
    before = absorbed("inbox_test_batch")
    first = process_batch(db, TABLE, [b, a, b, c], RegistrationCancelled, "inbox_test_batch", apply)
    second = process_batch(db, TABLE, [c, d], RegistrationCancelled, "inbox_test_batch", apply)
    process_batch(db, TABLE, [a, c], RegistrationCancelled, "inbox_test_batch", apply)
    assert batches == [[("r1", "corr-1"), ("r0", "corr-1"), ("r2", "corr-1")], [("r3", "corr-1")]]
    assert [item.message_id for item in first] == [b["message_id"], a["message_id"], c["message_id"]]
    assert [item.message_id for item in second] == [d["message_id"]]
    assert absorbed("inbox_test_batch") == before + 4
    with transaction(db) as session:
        assert len(session.execute(select(TABLE)).all()) == 4


def test_a_failed_effect_leaves_no_record_and_the_message_is_applied_later(db):
    message = body("r1")

    def fail(session, cancelled):
        raise RuntimeError("the effect failed")
    with pytest.raises(RuntimeError):
        process_once(db, TABLE, message, RegistrationCancelled, "inbox_test_fail", fail)
    assert process_once(db, TABLE, message, RegistrationCancelled, "inbox_test_fail",
                        lambda session, cancelled: None)[1] is True


@pytest.mark.parametrize("service", ["registration", "capacity", "notification"])
def test_the_inbox_table_is_the_one_each_service_migrates(tmp_path, service):
    """The table the code writes to is the one the migrations built: the same
    columns, types and keys (the key is what makes a twin find its record)."""
    table, reflected, _dialect = migrated_table(tmp_path, service, inbox_table)
    assert table.name == "processed_messages"
    columns = reflected.columns
    assert [c.name for c in columns if c.primary_key] == ["message_id", "handler"]
    assert [(c.name, str(c.type), c.nullable) for c in columns] == [
        (c.name, str(c.type), c.nullable) for c in table.columns]
