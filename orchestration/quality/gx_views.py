"""The Jinja views the quality docs' GX site renders with: GX's own, with every value escaped.

GX 1.24 escapes the string parameters of its string templates, but emits everything else a
renderer hands to its templates as raw HTML: a table cell, a list item or a header that is a plain
value (the unexpected values and their counts, the failing rows' values, the observed value,
run info), a non-string parameter (a list, a dict), a section's name and the page title. An orders
`currency` of `<img src=x onerror=...>` then runs when the page is opened (issue #11).

These views treat every such value as text, and the column section renderers below hand GX's
section headers the column name as a parameter (GX writes it into the header's markup). The only
HTML kept raw is what GX's renderers write themselves: content blocks (rendered by its templates),
the markup around string templates' parameters, and the few HTML constants below. The site config
in docs.py names these classes, so GX imports this module only when it builds the docs.
"""

from __future__ import annotations

import copy
import html
from typing import Any

from great_expectations.render import RenderedContent, RenderedDocumentContent
from great_expectations.render.renderer.content_block.exception_list_content_block import (
    ExceptionListContentBlockRenderer,
)
from great_expectations.render.renderer.column_section_renderer import (
    ExpectationSuiteColumnSectionRenderer,
    ValidationResultsColumnSectionRenderer,
)
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import pass_context

# Plain strings GX's renderers write as HTML on purpose (a header with its toggle arrow).
_GX_HTML_STRINGS = frozenset({ExceptionListContentBlockRenderer._default_header})


def escape_text(value: Any) -> Any:
    """A value as HTML text. Numbers stay numbers (bootstrap-table sorts them as such)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return html.escape(str(value), quote=True)


def _is_content_block(value: Any) -> bool:
    return isinstance(value, RenderedContent) or (isinstance(value, dict) and "content_block_type" in value)


def _escape_graph(content_block: dict) -> dict:
    """A chart's Vega-Lite spec is written into a <script> as is: no '</script>' may close it."""
    graph = content_block.get("graph")
    if isinstance(graph, str):
        graph = graph.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        content_block = {**content_block, "graph": graph}
    return content_block


class _EscapingView:
    """Mixed into GX's page views (before them)."""

    @staticmethod
    def _escape_template_param_value(value: Any) -> Any:
        # GX escapes string parameters only; a list or dict parameter is str()-ed into the page.
        return escape_text(value)

    @pass_context
    def render_content_block(self, jinja_context: Any, content_block: Any, index: Any = None,
                             content_block_id: Any = None, render_to_markdown: bool = False) -> Any:
        if content_block is None:
            return ""
        if isinstance(content_block, str) and content_block in _GX_HTML_STRINGS:
            return content_block
        if isinstance(content_block, list):
            # GX wraps each item that is not a content block in a <span> as it is
            content_block = [item if _is_content_block(item) else escape_text(item) for item in content_block]
        elif _is_content_block(content_block):
            if isinstance(content_block, RenderedContent):
                content_block = content_block.to_json_dict()
            if content_block.get("content_block_type") == "graph":
                content_block = _escape_graph(content_block)
        else:  # a plain value: a string, a number, a dict of a failing row's values ...
            return escape_text(content_block)
        return super().render_content_block(jinja_context, content_block, index=index,
                                            content_block_id=content_block_id,
                                            render_to_markdown=render_to_markdown)

    def render(self, document, template=None, **kwargs):
        # The page title and the sections' names (column names) are printed as they are by GX's
        # templates (top_navbar.j2, table_of_contents.j2). Copies: the document is GX's.
        if isinstance(document, RenderedDocumentContent):
            document = copy.copy(document)
            if isinstance(document.page_title, str):
                document.page_title = escape_text(document.page_title)
            sections = []
            for section in document.sections or []:
                if isinstance(getattr(section, "section_name", None), str):
                    section = copy.copy(section)
                    section.section_name = escape_text(section.section_name)
                sections.append(section)
            document.sections = sections
        return super().render(document, template, **kwargs)


class EscapingPageView(_EscapingView, DefaultJinjaPageView):
    """Validation result and expectation suite pages."""


class EscapingIndexPageView(_EscapingView, DefaultJinjaIndexPageView):
    """The GX site's index page."""


def _column_as_parameter(header_block, column: Any) -> None:
    """GX writes a column's name into the markup of its section header (not as a parameter,
    which the view escapes): make it the parameter."""
    template = header_block.header.string_template
    template["template"] = "$column"
    template["params"] = {**template.get("params", {}), "column": str(column)}


class EscapingValidationResultsColumnSectionRenderer(ValidationResultsColumnSectionRenderer):
    @classmethod
    def _render_header(cls, validation_results):
        remaining, block = super()._render_header(validation_results)
        _column_as_parameter(block, cls._get_column_name(validation_results))
        return remaining, block


class EscapingExpectationSuiteColumnSectionRenderer(ExpectationSuiteColumnSectionRenderer):
    @classmethod
    def _render_header(cls, expectations):
        remaining, block = super()._render_header(expectations)
        _column_as_parameter(block, cls._get_column_name(expectations))
        return remaining, block
