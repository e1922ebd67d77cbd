"""Stage three: finished runs -> report.md (ours beside the paper's tables) and PNG figures."""
from pipeline.report.run import ReportSummary, Section, report
from pipeline.report.runs import Run, is_placeholder_encoder, load_runs

__all__ = ["ReportSummary", "Run", "Section", "is_placeholder_encoder", "load_runs", "report"]
