"""The views without a kernel: fake clients, the live mode forced where a test needs threads.

Checks the rules the notebooks rely on: one bundle with text/plain + text/html (+ the widget
view only when live); the refresh thread starts on display, only changes traits, never
displays, stops when finished / paused / failing; nothing starts in non-interactive mode.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pandas as pd
import pytest

from batchfed_lab import widgets
from batchfed_lab.scheduler.types import NodeCounts, PoolFacts, PoolSnapshot, VmSize
from batchfed_lab.widgets import _live, _mode

VIEW = "application/vnd.jupyter.widget-view+json"


def wait_for(predicate, timeout=10.0):
    done = threading.Event()
    deadline = threading.Event()
    t = threading.Timer(timeout, deadline.set)
    t.start()
    try:
        while not predicate():
            assert not deadline.is_set(), "condition not met in time"
            done.wait(0.01)
    finally:
        t.cancel()


class FakeClient:
    def __init__(self, pools=3, feds=("f1", "f2")):
        size = VmSize("standard_d2_v3", 2, 8192)
        self.feds = list(feds)
        self.facts = [PoolFacts(f"p{i}", "http://127.0.0.1:1/accounts/a", "a", ["westeurope", "eastus"][i % 2], "standard_d2_v3", size,
                                task_slots_per_node=2) for i in range(pools)]
        self.calls: list[str] = []
        self.fail = False
        self.threads: set[str] = set()

    def federations(self):
        return [SimpleNamespace(id=f) for f in self.feds]

    def pool_snapshots(self, fed):
        self.threads.add(threading.current_thread().name)
        self.calls.append(fed)
        if self.fail:
            from batchfed_lab.errors import BatchError

            raise BatchError("localbatch is not running")
        return [PoolSnapshot(f, NodeCounts(idle=1, running=1), NodeCounts(other=1), active_tasks=3) for f in self.facts]

    def burn_rate(self, snapshots):
        from batchfed_lab.client.accounting import AccountingMixin

        return AccountingMixin.burn_rate(self, snapshots)


@pytest.fixture
def live(monkeypatch):
    """Pretend a frontend is attached (there is no kernel in a unit test)."""
    monkeypatch.setattr(_live, "interactive", lambda: True)


@pytest.fixture(autouse=True)
def no_display_from_threads(monkeypatch):
    """Fail if anything is displayed from a thread other than the main one."""
    import IPython.display

    real = IPython.display.display

    def guarded(*a, **k):
        assert threading.current_thread() is threading.main_thread(), "display() from a thread"
        return real(*a, **k)

    monkeypatch.setattr(IPython.display, "display", guarded)
    yield
    widgets.stop_all()


def test_static_mode_renders_the_fallback_and_starts_nothing():
    client = FakeClient()
    cap = widgets.PoolCapacity(client, "f1", interval=0.05)
    bundle = cap._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert cap.start() is cap and not cap.running and not widgets.live_views()
    assert 'data-pool="p0"' in bundle["text/html"] and "[eastus]" in bundle["text/plain"]
    assert "static: not running in a Jupyter kernel" in bundle["text/plain"] or "BATCHFED_NONINTERACTIVE" in bundle["text/plain"]


def test_the_header_says_how_many_schedulable_slots_are_in_use():
    # three pools, each one idle + one running node of 2 slots: 12 schedulable, 6 in use
    html = widgets.PoolCapacity(FakeClient(), "f1")._repr_mimebundle_()["text/html"]
    assert "6 of 12 schedulable slots in use" in html and "slots available" not in html


def test_the_header_shows_the_federations_burn_rate_as_an_estimate():
    # three d2_v3 pools in westeurope / eastus, each 2 dedicated + 1 low-priority node allocated
    html = widgets.PoolCapacity(FakeClient(), "f1")._repr_mimebundle_()["text/html"]
    assert "burn rate ~$" in html and "/h (estimate)" in html


def test_the_share_view_renders_users_statically():
    frame = pd.DataFrame(
        [{"user": "ada", "group": None, "shares": 3.0, "norm_shares": 0.75, "usage": 12.0, "norm_usage": 0.6,
          "fair_share": 0.57, "queued": 4, "blocked": 1, "placed": 9, "held_cores": 8.0, "spent": 12.4, "budget": 200.0}]
    )
    client = SimpleNamespace(share_frame=lambda fed: frame)
    view = widgets.ShareView(client, "lab")
    bundle = view._repr_mimebundle_()
    assert "ada" in bundle["text/html"] and "$12.40 / $200" in bundle["text/plain"]
    assert "0.570" in bundle["text/plain"] and "fair share in lab: 1 user(s)" in bundle["text/plain"]
    assert list(view.frame()["user"]) == ["ada"]


def test_mode_detection_order(monkeypatch):
    monkeypatch.setenv("BATCHFED_NONINTERACTIVE", "1")
    assert _mode.noninteractive_reason() == "BATCHFED_NONINTERACTIVE is set"
    monkeypatch.setenv("BATCHFED_NONINTERACTIVE", "0")
    monkeypatch.setenv("PAPERMILL_OUTPUT_PATH", "x.ipynb")
    assert _mode.noninteractive_reason() == "not running in a Jupyter kernel"  # forced: only "is there a kernel" counts
    monkeypatch.delenv("BATCHFED_NONINTERACTIVE")
    assert _mode.noninteractive_reason() == "papermill environment (PAPERMILL_OUTPUT_PATH)"


def test_live_capacity_thread_changes_traits_then_pauses_resumes_and_stops(live):
    client = FakeClient()
    cap = widgets.PoolCapacity(client, "f1", interval=0.02)
    bundle = cap._repr_mimebundle_()
    assert VIEW in bundle and "text/html" in bundle and "text/plain" in bundle
    assert cap.running and widgets.live_views() == [cap]
    wait_for(lambda: cap.ticks >= 5)
    assert "batchfed-capacity" in client.threads, "refreshes ran on the view's thread"
    assert "live every 0.02 s" in cap._status.value and "p2" in cap._body.value
    cap._toggle.value = True  # the Pause button
    assert not cap.running and cap._toggle.description == "Resume"
    ticks = cap.ticks
    assert cap.ticks == ticks and "paused" in cap.status_text()
    cap._toggle.value = False  # Resume
    wait_for(lambda: cap.ticks > ticks)
    assert widgets.stop_all() == 1 and not cap.running
    assert not [t for t in threading.enumerate() if t.name.startswith("batchfed-")]


def test_picker_switches_federation_and_samples_accumulate(live):
    client = FakeClient()
    cap = widgets.PoolCapacity(client, "f1", autostart=False)
    _ = cap.widget
    assert list(cap._picker.options) == ["f1", "f2"] and cap._picker.value == "f1"
    cap._picker.value = "f2"
    assert cap.federation_id == "f2" and client.calls[-1] == "f2"
    cap.refresh()
    samples = cap.samples()
    assert set(samples["federation_id"]) == {"f1", "f2"} and len(samples) == 3 * cap.ticks
    assert isinstance(samples["time"].dtype, pd.DatetimeTZDtype) and str(samples["time"].dtype.tz) == "UTC"
    assert len(cap.frame()) == 3 and cap.frame()["slots_available"].tolist() == [4, 4, 4]  # (1 idle + 1 running) × 2 slots


def test_a_failing_client_becomes_status_text_and_the_thread_gives_up(live):
    client = FakeClient()
    cap = widgets.PoolCapacity(client, "f1", interval=0.01)
    cap._repr_mimebundle_()
    client.fail = True
    wait_for(lambda: not cap.running)
    assert cap.error == "BatchError: localbatch is not running"
    assert "stopped after 5 failed refreshes" in cap._status.value


class FakeSubmission:
    """Actions that get placed on the second status call; tasks complete on the third."""

    def __init__(self, jobs=("j1", "j2")):
        self.federation_id = "f1"
        self.unique_ids = [f"u-{j}" for j in jobs]
        self.job_ids = list(jobs)
        self.n = 0
        self.client = SimpleNamespace(tasks=self._tasks)

    def status(self):
        self.n += 1
        now = datetime.now(timezone.utc)
        placed = self.n >= 2
        from batchfed_lab.frames import PLACEMENT_COLUMNS
        from batchfed_lab.frames._base import _frame

        rows = [{"job_id": j, "submitter": "ada", "priority": 0, "kind": "job", "method": "add", "unique_id": u, "pool_id": "p0" if placed else None,
                 "account": "a", "location": "eastus", "state": "placed" if placed else "queued", "reason": None,
                 "enqueued": now - timedelta(seconds=1), "placed": now if placed else None, "latency_s": 1.0 if placed else None}
                for j, u in zip(self.job_ids, self.unique_ids)]
        return _frame(rows, PLACEMENT_COLUMNS)

    def _tasks(self, fed, job):
        state = "completed" if self.n >= 3 else "running"
        return [SimpleNamespace(task=SimpleNamespace(state=state, result="success" if state == "completed" else None)) for _ in range(2)]


def test_submission_view_finishes_by_itself(live):
    sub = FakeSubmission()
    view = widgets.SubmissionView(sub, interval=0.01)
    view._repr_mimebundle_()
    wait_for(lambda: not view.running)
    df = view.frame()
    assert df["state"].tolist() == ["placed", "placed"] and df["tasks_completed"].tolist() == [2, 2]
    assert "finished" in view.status_text()
    label, bar = view._lines[0]
    assert bar.value == bar.max == 2 and bar.bar_style == "success" and "p0" in label.value


def test_submission_wait_times_out_naming_what_is_open():
    sub = FakeSubmission()
    sub._tasks = lambda fed, job: [SimpleNamespace(task=SimpleNamespace(state="running", result=None))]
    sub.client = SimpleNamespace(tasks=sub._tasks)
    view = widgets.SubmissionView(sub, interval=0.01)
    with pytest.raises(TimeoutError, match="j1 tasks 0/1"):
        view.wait(timeout=0.2)
    assert view.wait(timeout=5, until="settled")["state"].tolist() == ["placed", "placed"]


def explain_frame():
    rows = [
        {"job_id": "j", "pool_id": "a", "location": "eastus", "status": "chosen", "constraint": None, "required": None, "actual": None, "verdict": "eligible", "chosen": True},
        {"job_id": "j", "pool_id": "b", "location": "westeurope", "status": "excluded", "constraint": "location", "required": "eastus", "actual": "westeurope", "verdict": "location: …", "chosen": False},
        {"job_id": "j", "pool_id": "c", "location": "eastus", "status": "excluded", "constraint": "memory", "required": "≥ 64g", "actual": "8g", "verdict": "memory: …", "chosen": False},
    ]
    return pd.DataFrame(rows)


def test_explain_grid_names_the_failing_constraint_with_required_and_actual(live):
    view = widgets.ExplainView(explain_frame())
    bundle = view._repr_mimebundle_()
    html = bundle["text/html"]
    assert "✗ needs eastus / has westeurope" in html and "✗ needs ≥ 64g / has 8g" in html
    assert html.count('title="not checked') == 2  # b's memory column and c's location column
    assert view.chosen() == {"j": "a"} and not view.running and not widgets.live_views()
    assert "j → a" in bundle["text/plain"]


def test_explain_grid_shows_each_pools_estimated_cost():
    df = explain_frame()
    df["price_per_hour"] = [0.4, 0.08, None]
    df["est_cost"] = [1.2, 0.24, None]
    bundle = widgets.ExplainView(df)._repr_mimebundle_()
    assert "~$1.20 ($0.40/h)" in bundle["text/html"] and "~$0.24 ($0.08/h)" in bundle["text/plain"]
    assert "est. cost" in bundle["text/plain"]


def test_submit_form_buttons_show_results_and_report_errors(live):
    calls = []

    class FormClient(FakeClient):
        def explain(self, fed, jobs, **kw):
            calls.append(("explain", fed, kw.get("name")))
            return explain_frame()  # ExplainView accepts a verdicts frame

        def submit(self, fed, jobs, **kw):
            from batchfed_lab.errors import ConfigError

            raise ConfigError("jobs.yaml: job_specifications[0].id: missing")

    form = widgets.SubmitForm(FormClient(), yaml="job_specifications: []")
    form._repr_mimebundle_()
    assert form._fed.value == "f1"
    form._explain_btn.click()
    assert calls == [("explain", "f1", "<form>")]
    assert "batchfed-explain-widget" in form._result.children[0]._dom_classes
    form._submit_btn.click()  # errors become the status line, not a traceback nobody sees
    assert form._msg.value.count("error: ConfigError: jobs.yaml") == 1
    with pytest.raises(Exception, match="missing"):
        form.submit()  # from code it raises
