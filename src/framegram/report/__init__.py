"""The self-contained HTML report that capabilities add their sections to."""

from framegram.report.html import Html, Report, Section, array_img, figure_img, heading, paragraph, png_img, table

__all__ = ["Html", "Report", "Section", "array_img", "figure_img", "heading", "paragraph", "png_img", "table"]
