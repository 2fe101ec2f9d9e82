"""When each recipient's message is due: one moment, now, or a local wall-clock time in the
recipient's time zone, moved out of quiet hours. Computed once per time zone at launch."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def in_quiet_hours(t: time, start: time | None, end: time | None) -> bool:
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end  # the quiet period spans midnight


def due_time(
    *,
    timing: str,
    tz: ZoneInfo,
    now: datetime,
    send_at: datetime | None = None,
    local_date: date | None = None,
    local_time: time | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> datetime:
    """The moment (aware) a recipient in `tz` is due; never before `now`."""
    if timing == "local":
        due = datetime.combine(local_date, local_time, tzinfo=tz)
    elif timing == "at" or (timing == "best" and send_at is not None):
        due = send_at  # best hour: the window opens at send_at (campaigns.decisions.timing)
    else:
        due = now
    due = max(due, now)
    local = due.astimezone(tz)
    if in_quiet_hours(local.time().replace(tzinfo=None), quiet_start, quiet_end):
        end = datetime.combine(local.date(), quiet_end, tzinfo=tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), quiet_end, tzinfo=tz)
        due = end
    return due.astimezone(ZoneInfo("UTC"))
