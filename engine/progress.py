"""Progress of long work, one type for all of it: ingest, encode, index builds, evaluation,
copies between stores, training.

    def ingest(..., progress: Progress = SILENT):
        with progress.task("ingest glove.txt", total=size, unit="B") as task:
            task.update(done_bytes, vectors=rows)        # the position now, and what else to show
            task.note("skipped line 3")                  # a line of its own, above the bar

The library reports to the Progress it is given and is silent by default; the CLI gives it
`Progress.to_stderr()`: tqdm's bars (rate and ETA) on stderr, redrawn a few times a second on a
terminal and every 10 seconds otherwise (one line each, for logs), and nothing at all for work
that ends within a second (or ten, off a terminal).
"""

from __future__ import annotations

import sys
import time


class Task:
    """One piece of long work. Silent; `Progress.to_stderr()` gives ones that show."""

    def update(self, done, **shown) -> None:
        """The position now (absolute, in the task's unit) and named figures to show beside it;
        a figure given as an int is also shown per second."""

    def note(self, line: str) -> None:
        """A line of its own (an epoch's result): shown whatever the timing."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Progress:
    """Where long work reports: silent here; see `to_stderr()`."""

    def task(self, label: str, total: int | None = None, unit: str = "it") -> Task:
        return Task()

    @staticmethod
    def to_stderr() -> "Progress":
        return _Stderr()

    @staticmethod
    def calling(function) -> "Progress":
        """Progress reported to `function(label, done, shown)` on every update (a GUI's own bar, a
        script that stops the work at some point)."""
        return _Calling(function)


SILENT = Progress()


class _Calling(Progress):
    def __init__(self, function):
        self.function = function

    def task(self, label: str, total: int | None = None, unit: str = "it") -> Task:
        function = self.function

        class Calls(Task):
            def update(self, done, **shown) -> None:
                function(label, done, shown)

        return Calls()


class _Stderr(Progress):
    def task(self, label: str, total: int | None = None, unit: str = "it") -> Task:
        return _TqdmTask(label, total, unit)


class _TqdmTask(Task):
    def __init__(self, label: str, total: int | None, unit: str):
        from tqdm import tqdm

        tty = sys.stderr.isatty()

        class Bar(tqdm):
            shown = ""

            def display(self, msg=None, pos=None):
                if tty:
                    return super().display(msg, pos)
                line = self.__str__()
                if line != self.shown:  # off a terminal: whole lines, no carriage returns, no repeats
                    self.fp.write(line + "\n")
                    self.fp.flush()
                    self.shown = line
                return True

        self.bar = Bar(total=total, desc=label, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                       delay=1.0 if tty else 10.0, mininterval=0.25 if tty else 10.0, dynamic_ncols=True,
                       leave=tty,
                       bar_format=None if total else "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]")
        self.started = time.perf_counter()

    def update(self, done, **shown) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        postfix = {name: (f"{value:,} ({value / elapsed:,.0f}/s)" if isinstance(value, int) else
                          f"{value:.4f}" if isinstance(value, float) else value) for name, value in shown.items()}
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def note(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
