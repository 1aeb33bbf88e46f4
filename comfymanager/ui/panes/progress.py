"""The progress pane: one row per queued/running job and one per download, plus a total line.

Rows are small widgets updated in place (progress arrives throttled to ~10 a second per job).
Running and waiting work is listed first, then failures, then what finished. Finished rows fade
out after ``FADE_MS`` or on "Clear finished"; failed rows look failed (red title, no bar, no
Cancel), keep their cause and stay until dismissed one by one ("Dismiss"). A failed download
takes another address in place (queued through ``DownloadManager``). The header counts running
and failed downloads.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.install.install import STAGE_LABELS
from comfymanager.core.jobs import Job
from comfymanager.core.models import queue as q
from comfymanager.core.progress import Progress, format_bytes, format_duration
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.panes.error_view import ErrorView

log = logging.getLogger(__name__)

FADE_MS = 8000
_SEP = " \u00b7 "
FAILED_STYLE = "color: #c62828;"
# list order: what runs or waits, then failures, then what ended well
RUNNING, FAILED, ENDED = 0, 1, 2


def describe(p: Progress) -> str:
    """ "12.3 MB / 40.0 MB · 3.1 MB/s · ETA 9s" for bytes, "2 / 6" for steps, else ""."""
    if p.unit != "bytes":
        return ""
    parts = [
        f"{format_bytes(p.done)} / {format_bytes(p.total)}" if p.total else format_bytes(p.done)
    ]
    if p.speed:
        parts.append(f"{format_bytes(p.speed)}/s")
    if p.eta is not None:
        parts.append(f"ETA {format_duration(p.eta)}")
    return _SEP.join(parts)


def _set_bar(bar: QProgressBar, done: int, total: int | None) -> None:
    if total:
        scale = 1000
        bar.setRange(0, scale)
        bar.setValue(int(scale * min(1.0, done / total)))
    else:
        bar.setRange(0, 0)  # indeterminate


class _Row(QFrame):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.finished = False
        self.failed = False
        self.seq = 0  # arrival order within a group
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.stage = QLabel()
        self.stage.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setRange(0, 0)
        self.detail = QLabel()
        self.error = ErrorView()
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addLayout(self.buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(self.error)

    def button(self, text: str, accessible: str) -> QPushButton:
        b = QPushButton(text)
        b.setAccessibleName(accessible)
        self.buttons.addWidget(b)
        return b

    def set_failed(self, failed: bool) -> None:
        """Red title, no bar: a failure must not look like work in progress."""
        self.failed = failed
        self.title.setStyleSheet(FAILED_STYLE if failed else "")
        self.stage.setStyleSheet(FAILED_STYLE if failed else "")
        self.bar.setVisible(not failed)

    @property
    def group(self) -> int:
        if self.failed:
            return FAILED
        return ENDED if self.finished else RUNNING


class JobRow(_Row):
    """One job: title, stage label, bar, bytes/speed/ETA, Cancel."""

    def __init__(self, pane: ProgressPane, job: Job) -> None:
        super().__init__(job.title, pane)
        self.job = job
        self.stage.setText("Waiting for the project's previous job")
        self.cancel = self.button("Cancel", f"Cancel {job.title}")
        self.cancel.clicked.connect(lambda: pane.app.jobs.cancel(job))
        self.dismiss = self.button("Dismiss", f"Dismiss {job.title}")
        self.dismiss.clicked.connect(lambda: pane.dismiss(job.id))
        self.dismiss.setVisible(False)

    def started(self) -> None:
        self.stage.setText("Starting")

    def update_progress(self, p: Progress) -> None:
        label = p.message or STAGE_LABELS.get(p.stage, p.stage)
        if p.unit == "steps" and p.total:
            label = f"{label} (step {p.done + 1} of {p.total})"
        self.stage.setText(label)
        if p.unit == "bytes" or (p.unit == "steps" and p.total):
            _set_bar(self.bar, p.done, p.total)
        self.detail.setText(describe(p))

    def finish(self) -> None:
        self.finished = True
        self.cancel.setEnabled(False)
        self.cancel.setVisible(False)
        self.bar.setRange(0, 1)
        outcome = self.job.outcome
        if outcome == "succeeded":
            self.bar.setValue(1)
            self.stage.setText("Done")
        elif outcome == "cancelled":
            self.bar.setValue(0)
            self.stage.setText("Cancelled")
        else:
            self.bar.setValue(0)
            self.stage.setText("Failed")
            self.set_failed(True)
            self.dismiss.setVisible(True)
            if self.job.error is not None:
                self.error.show_info(self.job.error)
        self.detail.clear()


class DownloadRow(_Row):
    """One download from the queue with Pause / Resume / Cancel / Retry."""

    def __init__(self, pane: ProgressPane, item_id: str) -> None:
        item = pane.app.downloads.item(item_id)
        super().__init__(item.request.name, pane)
        self.item_id = item_id
        dl = pane.app.downloads
        name = item.request.name
        self.pause = self.button("Pause", f"Pause download {name}")
        self.resume = self.button("Resume", f"Resume download {name}")
        self.retry = self.button("Retry", f"Retry download {name}")
        self.cancel = self.button("Cancel", f"Cancel download {name}")
        self.dismiss = self.button("Dismiss", f"Dismiss download {name}")
        self.pause.clicked.connect(lambda: dl.pause(item_id))
        self.resume.clicked.connect(lambda: dl.resume(item_id))
        self.retry.clicked.connect(lambda: dl.retry(item_id))
        self.cancel.clicked.connect(lambda: dl.cancel(item_id))
        self.dismiss.clicked.connect(lambda: pane.dismiss(item_id))
        # a failed download can take another address in place
        self.other = QWidget()
        other = QHBoxLayout(self.other)
        other.setContentsMargins(0, 0, 0, 0)
        self.url = QLineEdit()
        self.url.setPlaceholderText("Another address for this file (https://...)")
        self.url.setAccessibleName(f"Another address for {name}")
        self.use_url = QPushButton("Download from here")
        self.use_url.setAccessibleName(f"Download {name} from the address given")
        self.url.returnPressed.connect(lambda: pane.other_url(item_id, self.url.text()))
        self.use_url.clicked.connect(lambda: pane.other_url(item_id, self.url.text()))
        other.addWidget(self.url, 1)
        other.addWidget(self.use_url)
        self.url_error = QLabel()
        self.url_error.setWordWrap(True)
        self.url_error.setStyleSheet(FAILED_STYLE)
        self.url_error.setVisible(False)
        body = self.layout()
        assert isinstance(body, QVBoxLayout)
        body.addWidget(self.other)
        body.addWidget(self.url_error)
        self.refresh(pane.app)

    def refresh(self, app: AppContext) -> None:
        item = app.downloads.item(self.item_id)
        st = item.state
        self.stage.setText(f"{item.request.folder}/{item.request.name}: {st}")
        self.pause.setVisible(st in (q.QUEUED, q.DOWNLOADING))
        self.resume.setVisible(st == q.PAUSED)
        self.retry.setVisible(st in (q.FAILED, q.CANCELLED))
        self.cancel.setVisible(st not in (q.DONE, q.CANCELLED, q.FAILED))
        self.dismiss.setVisible(st == q.FAILED)
        self.other.setVisible(st == q.FAILED)
        if st != q.FAILED:
            self.url_error.setVisible(False)
        self.set_failed(st == q.FAILED)
        if st == q.DONE:
            _set_bar(self.bar, 1, 1)
            self.detail.setText(format_bytes(item.total or item.done))
        elif st != q.DOWNLOADING:  # stopped ones show how far they got; queued ones wait
            stopped = st in (q.PAUSED, q.FAILED)
            _set_bar(self.bar, item.done, (item.total or 1) if stopped else None)
            got = format_bytes(item.done) if item.done else ""
            if got and st == q.PAUSED:
                got = f"paused at {got}" + (
                    f" of {format_bytes(item.total)}"
                    if item.total and item.total > item.done
                    else ""
                )
            elif got and item.total:
                got += f" / {format_bytes(item.total)}"
            self.detail.setText(got)  # no speed or ETA while nothing moves
        # failed, or paused by a lost connection: say why (a pause by the user has no error)
        if item.error and st in (q.FAILED, q.PAUSED):
            self.error.show_error(item.error)
        else:
            self.error.clear()
        self.detail.setVisible(bool(self.detail.text()))
        self.finished = st in (q.DONE, q.CANCELLED)

    def update_progress(self, p: Progress) -> None:
        if p.unit == "bytes":
            _set_bar(self.bar, p.done, p.total)
            self.detail.setText(describe(p))
            self.detail.setVisible(True)


class ProgressPane(QWidget):
    """Job and download rows. No signals; the window feeds it from JobManager/DownloadManager."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.jobs: dict[int, JobRow] = {}
        self.downloads: dict[str, DownloadRow] = {}
        self._seq = 0
        self.total = QLabel()
        self.total.setAccessibleName("Download total")
        self.clear = QPushButton("Clear finished")
        self.clear.setAccessibleName("Clear finished jobs and downloads")
        self.clear.clicked.connect(self.clear_finished)
        self.empty = QLabel("Nothing is running.")
        self._rows = QVBoxLayout()
        self._rows.addWidget(self.empty)
        self._rows.addStretch(1)
        inner = QWidget()
        inner.setLayout(self._rows)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Activity</b>"))
        head.addWidget(self.total, 1)
        head.addWidget(self.clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(scroll)

        jm = app.jobs
        jm.job_added.connect(self._on_jobs_job_added)
        jm.job_started.connect(self._on_jobs_job_started)
        jm.job_progress.connect(self._on_jobs_job_progress)
        jm.job_finished.connect(self._on_jobs_job_finished)
        app.downloads.item_changed.connect(self._on_downloads_item_changed)
        app.downloads.progress.connect(self._on_downloads_progress)
        for item in app.downloads.items():
            if item.state not in (q.DONE, q.CANCELLED):
                self._on_downloads_item_changed(item.id)
        self._update_total()

    def _add(self, row: _Row) -> None:
        self._seq += 1
        row.seq = self._seq
        self._rows.insertWidget(self._rows.count() - 1, row)
        self.empty.setVisible(False)
        self._order()

    def rows(self) -> list[_Row]:
        """The rows in the order shown."""
        out = []
        for i in range(self._rows.count()):
            item = self._rows.itemAt(i)
            w = item.widget() if item is not None else None
            if isinstance(w, _Row):
                out.append(w)
        return out

    def _order(self) -> None:
        """Running and waiting work first, then failures, then what ended; newest last."""
        shown = self.rows()
        wanted = sorted(shown, key=lambda r: (r.group, r.seq))
        if wanted == shown:
            return
        for r in shown:
            self._rows.removeWidget(r)
        for i, r in enumerate(wanted):
            self._rows.insertWidget(1 + i, r)  # after the "nothing is running" label

    def dismiss(self, key: int | str) -> None:
        """Remove one failed row (a failed download is forgotten by the queue too)."""
        if isinstance(key, int):
            jrow = self.jobs.pop(key, None)
            if jrow is not None:
                self._drop(jrow)
        else:
            drow = self.downloads.pop(key, None)
            try:
                self.app.downloads.remove(key)
            except ComfyManagerError as exc:
                log.info("dismiss %s: %s", key, exc.message)
            if drow is not None:
                self._drop(drow)
        self._update_total()

    def other_url(self, item_id: str, url: str) -> bool:
        """Queue a failed download again from ``url`` (the failed item gives way)."""
        from comfymanager.core.models.request import DownloadRequest

        drow = self.downloads.get(item_id)
        url = url.strip()
        try:
            item = self.app.downloads.item(item_id)
            if not url:
                raise ComfyManagerError("No address given.", "Paste the file's download address.")
            from comfymanager.core.models.folders import check_url

            check_url(url)
            request = DownloadRequest(
                urls=(url,),
                folder=item.request.folder,
                name=item.request.name,
                sha256=item.request.sha256,
            )
            self.app.downloads.remove(item_id)
            for requester in item.requesters or ("",):
                self.app.downloads.add(request, requester)
        except ComfyManagerError as exc:
            if drow is not None:
                fix = f" {exc.fix}" if exc.fix else ""
                drow.url_error.setText(f"{exc.message}{fix}")
                drow.url_error.setVisible(True)
            return False
        return True

    def _drop(self, row: _Row) -> None:
        self._rows.removeWidget(row)
        row.deleteLater()
        self.empty.setVisible(not (set(self.jobs) or set(self.downloads)))

    def clear_finished(self) -> None:
        """Remove what ended well; failures stay until dismissed one by one."""
        for key, jrow in list(self.jobs.items()):
            if jrow.finished and not jrow.failed:
                del self.jobs[key]
                self._drop(jrow)
        for did, drow in list(self.downloads.items()):
            if drow.finished and not drow.failed:
                del self.downloads[did]
                self._drop(drow)
        self._update_total()

    def _fade(self, key: int | str) -> None:
        if isinstance(key, int):
            jrow = self.jobs.get(key)
            if jrow is not None and jrow.finished and jrow.job.outcome != "failed":
                del self.jobs[key]
                self._drop(jrow)
        else:
            drow = self.downloads.get(key)
            if drow is not None and drow.finished:
                del self.downloads[key]
                self._drop(drow)

    def _update_total(self) -> None:
        items = self.app.downloads.items()
        moving = [i for i in items if i.state in (q.QUEUED, q.DOWNLOADING, q.VERIFYING)]
        failed = [i for i in items if i.state == q.FAILED]
        paused = [i for i in items if i.state == q.PAUSED]
        parts = []
        if moving:
            parts.append(f"{len(moving)} running")
        if paused:
            parts.append(f"{len(paused)} paused")
        if failed:
            parts.append(f"{len(failed)} failed")
        if not parts:
            self.total.clear()
            self.total.setStyleSheet("")
            return
        text = "Downloads: " + ", ".join(parts)
        if moving:
            done = sum(i.done for i in moving)
            total = sum(i.total or 0 for i in moving)
            text += _SEP + (
                f"{format_bytes(done)} / {format_bytes(total)}" if total else format_bytes(done)
            )
        self.total.setText(text)
        self.total.setStyleSheet(FAILED_STYLE if failed and not moving else "")

    # --- jobs ----------------------------------------------------------------------------------
    def _on_jobs_job_added(self, job: Job) -> None:
        row = JobRow(self, job)
        self.jobs[job.id] = row
        self._add(row)

    def _on_jobs_job_started(self, job: Job) -> None:
        row = self.jobs.get(job.id)
        if row is not None:
            row.started()

    def _on_jobs_job_progress(self, job: Job, p: Progress) -> None:
        row = self.jobs.get(job.id)
        if row is not None:
            row.update_progress(p)

    def _on_jobs_job_finished(self, job: Job) -> None:
        row = self.jobs.get(job.id)
        if row is None:
            return
        row.finish()
        self._order()
        if job.outcome != "failed":
            QTimer.singleShot(FADE_MS, self, lambda k=job.id: self._fade(k))

    # --- downloads -----------------------------------------------------------------------------
    def _on_downloads_item_changed(self, item_id: str) -> None:
        try:
            self.app.downloads.item(item_id)
        except Exception:  # removed from the queue
            row = self.downloads.pop(item_id, None)
            if row is not None:
                self._drop(row)
            return
        drow = self.downloads.get(item_id)
        if drow is None:
            drow = DownloadRow(self, item_id)
            self.downloads[item_id] = drow
            self._add(drow)
        else:
            drow.refresh(self.app)
        self._order()
        if drow.finished:
            QTimer.singleShot(FADE_MS, self, lambda k=item_id: self._fade(k))
        self._update_total()

    def _on_downloads_progress(self, p: Progress) -> None:
        drow = self.downloads.get(p.key)
        if drow is not None:
            drow.update_progress(p)
            self._update_total()
