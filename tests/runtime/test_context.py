"""``ctx``: kre-py 1.x's handler context, with its checks and error texts, on the local store."""

import asyncio
import io
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from krtlab.runtime.context import Context, KreFormatter, drive, node_logger
from krtlab.runtime.errors import RunError
from krtlab.runtime.store import LocalStore


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store.sqlite")


@pytest.fixture
def ctx(tmp_path, store):
    return Context(base_path=str(tmp_path), version="v1", node_name="etl", store=store)


def test_path_set_and_get(ctx, tmp_path):
    assert ctx.path("models/m.json") == str(tmp_path / "models" / "m.json")
    ctx.set("model", {"w": 1})
    assert ctx.get("model") == {"w": 1}
    assert ctx.for_request().get("model") == {"w": 1}  # per-request copies share the data
    with pytest.raises(AttributeError, match="'missing'"):
        ctx.get("missing")


def test_db_save_and_find_check_arguments_like_kre_py(ctx):
    drive(ctx.db.save("people", {"name": "Ann", "age": 31, "tags": ("a", "b")}))
    drive(ctx.db.save("people", {"name": "Bob", "age": 25}))
    found = drive(ctx.db.find("people", {"age": {"$gte": 30}}))
    assert [(d["name"], d["tags"]) for d in found] == [("Ann", ["a", "b"])]  # JSON, as on KRE
    assert len(found[0]["_id"]) == 24
    with pytest.raises(Exception, match=r"\[ctx.db.save\] invalid 'collection'=''"):
        drive(ctx.db.save("", {}))
    with pytest.raises(Exception, match=r"\[ctx.db.find\] invalid 'query'='\{\}', must be a"):
        drive(ctx.db.find("people", {}))
    with pytest.raises(Exception, match=r"MongoDB: query operator '\$regex' is not supported"):
        drive(ctx.db.find("people", {"name": {"$regex": "A.*"}}))
    with pytest.raises(TypeError):
        drive(ctx.db.save("people", {"when": datetime.now()}))  # json.dumps fails on KRE too


def test_measurements_get_the_version_tag(ctx, store):
    ctx.measurement.save("prices", {"price": 3.5}, {"currency": "EUR"})
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    ctx.measurement.save("prices", {"price": 4}, {}, when, ctx.measurement.PRECISION_S)
    first, second = store.measurements("prices")
    assert first["tags"] == {"currency": "EUR", "version": "v1"} and first["node"] == "etl"
    assert first["time"].endswith("Z")
    assert (second["time"], second["precision"]) == ("2026-01-02T02:04:05.000000Z", "s")


def test_prediction_save_is_checked_like_kre_py(ctx, store):
    save = ctx.prediction.save
    drive(save(predicted_value="cat", true_value="dog", extra={"p": 0.4}))
    drive(save(error=ctx.prediction.ERR_MISSING_VALUES))
    drive(save("a", "a", utcdate=datetime(2026, 5, 1, 12, 0, 0)))
    rows = store.predictions()
    assert [(r["predicted_value"], r["true_value"], r["error"]) for r in rows] == [
        ("cat", "dog", ""),
        ("", "", "missing_values"),
        ("a", "a", ""),
    ]
    assert rows[0]["extra"] == {"p": 0.4} and rows[0]["version"] == "v1"
    assert rows[2]["date"] == "2026-05-01T12:00:00.000000Z"
    with pytest.raises(Exception, match="should be one of 'missing_values,new_labels'"):
        drive(save("a", "b", error="typo"))
    with pytest.raises(Exception, match="invalid 'true_value'='', must be a nonempty string"):
        drive(save("a"))
    with pytest.raises(Exception, match="Input date must be a UTC datetime"):
        drive(save("a", "b", utcdate=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))))


def test_reply_once_per_request(ctx):
    sent = []

    async def channel(msg):
        sent.append(msg)

    req = ctx.for_request(reply=channel)
    drive(req.reply("answer"))
    assert sent == ["answer"] and req.replied
    with pytest.raises(Exception, match=r"^error the message was replied previously$"):
        drive(req.reply("again"))
    with pytest.raises(Exception, match="replied previously"):
        drive(ctx.for_request(replied=True, reply=channel).reply("late"))
    assert not ctx.for_request(reply=channel).replied  # a new request starts clean
    with pytest.raises(RunError, match="no reply channel"):
        drive(ctx.reply("x"))


def test_a_constructed_context_leaves_reply_tracking_to_its_channel(tmp_path, store):
    sent = []

    async def channel(msg):  # e.g. a worker that checks its envelope's replied flag
        sent.append(msg)

    ctx = Context(base_path=".", version="v1", node_name="n", store=store, reply=channel)
    drive(ctx.reply(1))
    drive(ctx.reply(2))
    assert sent == [1, 2]


def test_logger_uses_kre_format_and_is_captured(ctx):
    stream = io.StringIO()
    logger = node_logger("v1", "etl", stream=stream)
    assert logger is ctx.logger and logger.name == "v1-etl"
    lines = []
    ctx.capture.sink = lines
    ctx.logger.warning("careful %s", "now")
    ctx.capture.sink = None
    ctx.logger.info("not captured")
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN careful now"
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0])
    assert re.match(pattern, stream.getvalue())
    assert "not captured" in stream.getvalue()
    record = logging.LogRecord("x", logging.CRITICAL, "", 0, "m", None, None)
    assert KreFormatter().format(record).endswith("Z ERROR m")
    assert record.levelname == "CRITICAL"  # not renamed for other handlers


def test_drive_runs_coroutines_fast_or_on_a_helper_thread():
    async def quick():
        return asyncio.current_task() is not None

    async def waits():
        await asyncio.sleep(0.01)
        return "waited"

    async def fails():
        await asyncio.sleep(0)
        raise KeyError("k")

    assert drive(quick()) is True
    assert drive(waits()) == "waited"
    with pytest.raises(KeyError):
        drive(fails())

    async def inside_a_loop():
        return drive(waits())

    assert asyncio.run(inside_a_loop()) == "waited"
