"""The built-in demo: generated posts -> extract -> fit -> report -> predict, offline, in a few CPU minutes."""
from pipeline.lazy import exports

__all__ = ["DemoConfig", "DemoSummary", "choose_encoder", "demo", "write_sample"]
__getattr__ = exports(__name__, {
    "DemoConfig": "pipeline.demo.config", "DemoSummary": "pipeline.demo.summary",
    "choose_encoder": "pipeline.demo.run", "demo": "pipeline.demo.run", "write_sample": "pipeline.demo.sample",
})
