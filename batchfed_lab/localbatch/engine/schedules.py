"""Job schedules: each one creates its next job when due (at most one active job at a time) and
completes when its window or its one run is over. A recurrence's job holds only what the
job specification gives it (its job manager task); its other tasks are added by the caller."""

from __future__ import annotations

import datetime as _dt
import logging

from .._util import ApiError, iso, iso_now, now, parse_duration, parse_iso
from ..model import Schedule
from .jobs import Jobs

log = logging.getLogger("batchfed_lab.localbatch")


class Schedules(Jobs):
    def schedule_tick(self, sched: Schedule) -> float | None:
        """Create the schedule's next job if due; return seconds until it should be looked at again."""
        doc = sched.doc
        if doc["state"] != "active":
            return None
        acct = self.account(sched.account)
        cfg = doc.get("schedule") or {}
        wall = now()
        after = cfg.get("doNotRunAfter")
        recent = acct.jobs.get(sched.recent_job_key) if sched.recent_job_key else None
        if after and wall > parse_iso(after):
            if recent is None or recent.state == "completed":
                self._complete_schedule(sched)
            return 1.0
        info = doc.setdefault("executionInfo", {})
        nxt = info.get("nextRunTime")
        if nxt is None:
            if recent is None or recent.state == "completed":
                self._complete_schedule(sched)  # a one-off schedule whose job is done
            return 1.0
        due = parse_iso(nxt)
        if wall < due:
            return (due - wall).total_seconds()
        interval = parse_duration(cfg["recurrenceInterval"], "recurrenceInterval") if cfg.get("recurrenceInterval") else None
        window = parse_duration(cfg["startWindow"], "startWindow") if cfg.get("startWindow") else None
        if recent is not None and recent.state != "completed":
            # at most one active job per schedule: wait for it, unless the start window passed
            if window is not None and (wall - due).total_seconds() > window and interval:
                self._advance(sched, due, interval, wall)
                self.touch(doc)
                self.save_schedule(sched)
            return 0.25
        sched.job_counter += 1
        fields = dict(doc["jobSpecification"])
        fields["id"] = f"{doc['id']}:job-{sched.job_counter}"
        try:
            # as on Azure, the job gets what its specification says (a job manager task, if
            # any) and nothing more: whoever placed the schedule adds the recurrence's tasks
            job = self.add_job(acct, fields, schedule=sched)
        except ApiError as exc:  # e.g. someone created a job with that id by hand
            log.warning("job schedule %s/%s: could not create %s: %s", sched.account, doc["id"], fields["id"], exc)
            job = None
        if job is not None:
            sched.recent_job_key = job.key
            info["recentJob"] = {"id": job.doc["id"]}
        if interval:
            self._advance(sched, due, interval, wall)
        else:
            info.pop("nextRunTime", None)
        self.touch(doc)
        self.save_schedule(sched)
        self.wake()
        return 0.25

    @staticmethod
    def _advance(sched: Schedule, due: _dt.datetime, interval: float, wall: _dt.datetime) -> None:
        step = _dt.timedelta(seconds=interval)
        nxt = due + step
        while nxt <= wall:  # missed recurrences are skipped, not replayed
            nxt += step
        sched.doc["executionInfo"]["nextRunTime"] = iso(nxt)

    def _complete_schedule(self, sched: Schedule) -> None:
        self.set_state(sched.doc, "completed")
        sched.doc.setdefault("executionInfo", {})["endTime"] = iso_now()
        sched.doc["executionInfo"].pop("nextRunTime", None)
        self.touch(sched.doc)
        self.save_schedule(sched)

    def terminate_schedule(self, sched: Schedule) -> None:
        acct = self.account(sched.account)
        self.set_state(sched.doc, "terminating")
        for job in list(acct.jobs.values()):
            if job.schedule_key == sched.key and job.state != "completed":
                self.terminate_job(job, "UserTerminate")
        self._complete_schedule(sched)

    def delete_schedule(self, sched: Schedule) -> None:
        acct = self.account(sched.account)
        for job in list(acct.jobs.values()):
            if job.schedule_key == sched.key:
                self.delete_job(job)
        acct.schedules.pop(sched.key, None)
        assert self.store is not None
        self.store.delete("schedule", sched.account, sched.key)
