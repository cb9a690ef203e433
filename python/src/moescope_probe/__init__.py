"""moescope-probe: record what the routers of a PyTorch Mixture-of-Experts model do, live.

    import moescope_probe
    with moescope_probe.attach(model, "run.arrows") as probe:   # or "tcp://HOST:PORT" / "unix:PATH"
        for step, batch in enumerate(loader):
            probe.step(step)
            model(**batch)

The trace is a moescope trace (docs/trace-format.md): every moescope command reads it, while it grows too.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .find import NoRouterError, RouterSite, find_routers  # noqa: E402
from .probe import Probe, ProbeReport, attach  # noqa: E402
from .sinks import ProbeSinkError  # noqa: E402

__all__ = ["attach", "Probe", "ProbeReport", "NoRouterError", "ProbeSinkError", "RouterSite", "find_routers", "__version__"]
