"""Plotly reports: each chart has a data twin `<chart>_data(con) -> polars.DataFrame` and a
`<chart>_figure(frame) -> plotly Figure`; `build_report` writes one folder per night."""

from cjm_analytics.reports.build import build_report

__all__ = ["build_report"]
