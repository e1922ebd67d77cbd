"""Stage three: finished runs -> report.md (ours beside the paper's tables) and PNG figures."""
from pipeline.lazy import exports

__all__ = ["RULE", "ReportConfig", "ReportSummary", "Run", "Section", "load_runs", "report"]
__getattr__ = exports(__name__, {
    "RULE": "pipeline.report.document", "ReportConfig": "pipeline.report.config", "ReportSummary": "pipeline.report.section",
    "Section": "pipeline.report.section", "Run": "pipeline.report.runs", "load_runs": "pipeline.report.runs",
    "report": "pipeline.report.run",
})
