"""Memory amounts and durations as users write them in YAML."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_MEMORY_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([bkmgt])\s*$", re.IGNORECASE)
# binary multiples, expressed in MiB (the unit the scheduler compares in)
_TO_MIB = {"b": 1 / 1024**2, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}


def parse_memory_mib(value: object) -> float:
    """``'64g'`` → 65536.0 MiB. Suffixes b k m g t, any case, binary multiples.

    Every suffix works, ``m`` included (docs/compat.md).
    """
    if isinstance(value, bool):
        raise ValueError("expected a memory amount such as 512m or 64g, not a boolean")
    if isinstance(value, (int, float)):
        raise ValueError(f"add a unit suffix (b, k, m, g or t), e.g. '{value}g'")
    if not isinstance(value, str):
        raise ValueError("expected a memory amount such as 512m or 64g")
    m = _MEMORY_RE.match(value)
    if not m:
        raise ValueError("not a memory amount; use a number with a suffix b, k, m, g or t (e.g. 512m, 64g)")
    amount = float(m.group(1)) * _TO_MIB[m.group(2).lower()]
    if not math.isfinite(amount):
        raise ValueError("memory amount is too large")
    if amount <= 0:
        raise ValueError("memory amount must be greater than zero")
    return amount


def format_mib(mib: float) -> str:
    """65536 → ``64g``; 1536 → ``1.5g``; 512 → ``512m``."""
    if mib >= 1024:
        g = mib / 1024
        return f"{g:g}g" if abs(g - round(g, 2)) < 1e-9 else f"{g:.2f}g"
    return f"{mib:g}m"


_DURATION_RE = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)$")
_ISO_RE = re.compile(r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


def parse_duration(value: object) -> timedelta:
    """Durations as the original wrote them: ``HH:MM:SS``, ``D.HH:MM:SS``, ISO 8601 ``PT5M``, or seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 00:05:00, PT5M or a number of seconds")
    try:
        if isinstance(value, timedelta):
            td = value
        elif isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ValueError("expected a finite number of seconds")
            td = timedelta(seconds=float(value))
        elif isinstance(value, str):
            m = _DURATION_RE.match(value.strip()) or _ISO_RE.match(value.strip())
            if not m or not any(m.groupdict().values()):
                raise ValueError("not a duration; use HH:MM:SS, D.HH:MM:SS, ISO 8601 (PT5M) or seconds")
            parts = {k: float(v) for k, v in m.groupdict().items() if v}
            td = timedelta(
                days=parts.get("days", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0)
            )
        else:
            raise ValueError("expected a duration such as 00:05:00, PT5M or a number of seconds")
    except OverflowError:
        raise ValueError("duration is too long") from None
    if td.total_seconds() <= 0:
        raise ValueError("duration must be greater than zero")
    return td


def iso_duration(td: timedelta) -> str:
    """timedelta → ISO 8601 as Batch REST expects (``PT1H2M3S``)."""
    total = td.total_seconds()
    days, rem = divmod(int(total), 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    frac = total - int(total)
    out = "P" + (f"{days}D" if days else "")
    t = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    s = seconds + frac
    if s or not (days or t):
        t += f"{s:g}S"
    return out + ("T" + t if t else "")
