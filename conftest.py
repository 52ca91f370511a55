"""pytest set-up shared by the unit tests and the notebook checks (nbval collects notebooks/)."""

import os

# Notebooks run in fast mode under test, without progress bars; set before any kernel starts,
# which inherits the environment.
os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_collectstart(collector):
    # nbval compares only the cells tagged nbval-check-output; within them, ignore outputs that
    # legitimately vary (warnings on stderr, rich HTML and images).
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb" \
            and hasattr(collector, "skip_compare"):
        collector.skip_compare += ("stderr", "text/html", "application/javascript",
                                   "image/svg+xml", "application/pdf")
