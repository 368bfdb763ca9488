"""The HTML report escapes what users name: a video called like a tag shows as text, never runs."""

from __future__ import annotations

import shutil

import pytest

from framegram.demo import _framegrams_section
from framegram.extract import extract
from framegram.keyframes.report import keyframes_section
from framegram.report.html import Html, Report, Section, heading, paragraph
from framegram.report.sections import DemoContext

TAG = "<svg onload=alert(1)>"
ESCAPED = "&lt;svg onload=alert(1)&gt;"


@pytest.fixture(scope="module")
def tagged_context(tmp_path_factory, videos, encoder) -> DemoContext:
    """The demo's context for one real video whose file name is an HTML tag."""
    folder = tmp_path_factory.mktemp("tagged")
    video = folder / f"{TAG}.mp4"
    shutil.copy(videos["carphone_pristine.mp4"], video)
    framegram, timing = extract(video, encoder)
    return DemoContext(folder / "out", encoder, [video], {video: framegram}, {video: timing},
                       failed={folder / f"{TAG}-broken.mp4": f"{TAG}: not a video"}, show_progress=False)


@pytest.mark.parametrize("builder", [_framegrams_section, keyframes_section])
def test_sections_escape_the_file_name(builder, tagged_context):
    page = Report("demo", [builder(tagged_context)]).to_html()
    assert TAG not in page
    assert f"{ESCAPED}.mp4" in page


def test_section_parts_are_text_unless_marked_as_markup():
    section = Section(TAG, [heading(TAG), paragraph(TAG), TAG, Html("<em>trusted</em>")])
    assert section.body == f"<h3>{ESCAPED}</h3>\n<p>{ESCAPED}</p>\n{ESCAPED}\n<em>trusted</em>"
    page = Report(TAG, [section]).to_html()
    assert TAG not in page and page.count(ESCAPED) == 7  # page title, h1, nav, h2 and the three parts
    assert Section(TAG, TAG).body == ESCAPED  # a body of one plain string is text too
