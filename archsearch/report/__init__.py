"""Report room: one self-contained HTML selection report per task, and the exported model."""

from archsearch.report.export import export_model
from archsearch.report.render import ReportInputs, render_report

__all__ = ["ReportInputs", "export_model", "render_report"]
