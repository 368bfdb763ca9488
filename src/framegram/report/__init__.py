"""The self-contained HTML report that capabilities add their sections to."""

from framegram.report.html import Report, Section, array_img, figure_img, paragraph, png_img, table

__all__ = ["Report", "Section", "array_img", "figure_img", "paragraph", "png_img", "table"]
