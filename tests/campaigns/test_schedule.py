"""campaigns.schedule: a message's due time, at a local time in the recipient's zone and outside
quiet hours."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from campaigns import schedule


def test_local_time_sends_and_quiet_hours():
    now = datetime(2026, 6, 1, 6, 0, tzinfo=ZoneInfo("UTC"))
    kw = {"timing": "local", "now": now, "local_date": now.date(), "local_time": time(10, 0)}
    london = schedule.due_time(tz=ZoneInfo("Europe/London"), **kw)
    new_york = schedule.due_time(tz=ZoneInfo("America/New_York"), **kw)
    assert london == datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 BST
    assert new_york == datetime(2026, 6, 1, 14, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 EDT
    tokyo = schedule.due_time(tz=ZoneInfo("Asia/Tokyo"), **kw)  # 10:00 JST passed: send now
    assert tokyo == now
    late = schedule.due_time(
        timing="now",
        tz=ZoneInfo("Europe/London"),
        now=datetime(2026, 6, 1, 22, 30, tzinfo=ZoneInfo("UTC")),
        quiet_start=time(21, 0),
        quiet_end=time(8, 0),
    )
    assert late == datetime(2026, 6, 2, 7, 0, tzinfo=ZoneInfo("UTC"))  # 08:00 BST next day
