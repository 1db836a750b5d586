"""``SubmitForm``: pick a federation, edit jobs YAML, dry-run it (explain) or submit it.

Buttons run in the kernel's message handler (not a thread) and only replace the result
area's children with an :class:`ExplainView` or a :class:`SubmissionView` widget; errors
become a one-line status, because an exception in a button callback reaches no cell.
Called from code, :meth:`dry_run` and :meth:`submit` raise as the client does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _html as h
from ._live import LiveView, _one_line
from .explain import ExplainView
from .submission import SubmissionView

if TYPE_CHECKING:
    from ..client import Client
    from ..results import Submission

__all__ = ["SubmitForm"]

EXAMPLE = """job_specifications:
- id: hello
  federation_constraints:
    pool:
      location: eastus
  tasks:
  - command: echo hello from $AZ_BATCH_POOL_ID
"""


class SubmitForm(LiveView):
    """``SubmitForm(client, "fed", yaml=...)``; ``.submissions`` lists what it submitted."""

    kind = "form"
    live = False

    def __init__(self, client: Client, federation_id: str | None = None, yaml: str = EXAMPLE):
        super().__init__(autostart=False)
        self.client = client
        self._federation_id = federation_id
        self._yaml = yaml
        self.submissions: list[Submission] = []
        self.last_view: LiveView | None = None
        self._message = ""
        self._feds: list[str] = []

    # -- model ---------------------------------------------------------------------------
    @property
    def federation_id(self) -> str | None:
        return self._federation_id

    @federation_id.setter
    def federation_id(self, value: str | None) -> None:
        self._federation_id = value
        if self._widget is not None and value in self._fed.options:
            self._fed.value = value

    @property
    def yaml(self) -> str:
        return self._yaml

    @yaml.setter
    def yaml(self, text: str) -> None:
        self._yaml = text
        if self._widget is not None:
            self._editor.value = text

    def _fetch(self) -> Any:
        self._feds = [f.id for f in self.client.federations()]
        if self._federation_id is None and self._feds:
            self._federation_id = self._feds[0]
        return self._feds

    def _need_federation(self) -> str:
        if not self._federation_id:
            from ..errors import ConfigError

            raise ConfigError("pick a federation first (none exists yet: create one with %fed create ID)")
        return self._federation_id

    def dry_run(self) -> ExplainView:
        """Explain the YAML on the federation (enqueues nothing); shows and returns the view."""
        view = ExplainView.run(self.client, self._need_federation(), self._yaml, name="<form>")
        self._show(view, view.status_text())
        return view

    def submit(self) -> Submission:
        """Submit the YAML; shows a live :class:`SubmissionView` and returns the submission."""
        sub = self.client.submit(self._need_federation(), self._yaml, name="<form>")
        self.submissions.append(sub)
        self._show(SubmissionView(sub), f"submitted {len(sub.unique_ids)} action(s): {', '.join(sub.job_ids)}")
        return sub

    def _show(self, view: LiveView, message: str) -> None:
        if isinstance(self.last_view, SubmissionView):
            self.last_view.stop()  # one live submission per form
        self.last_view = view
        self._message = message
        if self._widget is not None:
            self._result.children = (view.widget,)
            if view.live and view.autostart:
                view.start()
            self._update()

    # -- rendering -----------------------------------------------------------------------------
    def _render_html(self) -> str:
        fed = h.esc(self._federation_id or "(none)")
        note = "an interactive form: run it in JupyterLab, or use %%fed explain / %%fed submit"
        return (
            f'<div class="batchfed-submit-form"><div><b>submit form</b> · federation {fed} · '
            f'<span style="color:#868e96">{h.esc(note)}</span></div><pre style="font-size:11px">{h.esc(self._yaml)}</pre></div>'
        )

    def _render_text(self) -> str:
        return (
            f"SubmitForm(federation={self._federation_id!r}) — interactive only; use %%fed explain / %%fed submit\n{self._yaml}"
        )

    # -- widget --------------------------------------------------------------------------------
    def _build(self) -> Any:
        import ipywidgets as w

        self._fed = w.Dropdown(
            description="federation", options=self._feds, value=self._federation_id if self._federation_id in self._feds else None
        )
        self._editor = w.Textarea(
            value=self._yaml, placeholder="jobs YAML (job_specifications: …)", layout=w.Layout(width="100%", height="220px")
        )
        self._explain_btn = w.Button(
            description="Dry run (explain)", icon="search", tooltip="explain: per-pool verdicts, enqueues nothing"
        )
        self._submit_btn = w.Button(description="Submit", icon="paper-plane", button_style="primary")
        self._msg = w.HTML()
        self._result = w.VBox()
        self._fed.observe(self._on_fed, names="value")
        self._editor.observe(self._on_edit, names="value")
        self._explain_btn.on_click(lambda _b: self._guarded(self.dry_run))
        self._submit_btn.on_click(lambda _b: self._guarded(self.submit))
        box = w.VBox([self._fed, self._editor, w.HBox([self._explain_btn, self._submit_btn]), self._msg, self._result])
        box.add_class("batchfed-submit-form-widget")
        return box

    def _update(self) -> None:
        if list(self._fed.options) != self._feds:
            self._fed.options = self._feds
        color = "#c92a2a" if self._message.startswith("error") else "#495057"
        self._msg.value = f'<span style="color:{color}">{h.esc(self._message)}</span>'

    def _guarded(self, action: Any) -> None:
        self._message = "working…"
        self._update()
        try:
            action()
        except Exception as exc:  # nobody sees a callback's traceback: say it in the form
            self._message = f"error: {_one_line(exc)}"
            self._update()

    def _on_fed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._federation_id = change["new"]

    def _on_edit(self, change: dict[str, Any]) -> None:
        self._yaml = change["new"]

    def close(self) -> None:
        if self.last_view is not None:
            self.last_view.close()
        super().close()
