"""Sphinx extension for the course's book: what a reader sees, with or without a network.

* The notebooks' "Open in Colab" badge is an image on colab.research.google.com: offline it is a
  broken image, and online it repeats the page's launch button. The book drops it (the notebooks
  keep it for GitHub and Jupyter).
* The reference list is labelled author–year, as the citations in the text are
  (``bibtex_default_style: ntk``): "[Oymak and Soltanolkotabi, 2019]" in the list for
  "Oymak and Soltanolkotabi (2019)" in the text, each entry with its DOI or arXiv link.
* A formula that Markdown broke (a ``$$`` block in a list item with no blank line before it, a
  wrapped line of inline maths that begins with ``- ``) leaves a ``$``, ``\\(`` or ``\\[`` in the
  page's text. Each one is a warning, so the ``-W`` build fails and names the page and line.
"""

from __future__ import annotations

import re

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.util import logging

logger = logging.getLogger(__name__)

COLAB_BADGE = "colab.research.google.com/assets/colab-badge.svg"
RAW_TEX = re.compile(r"\$|\\\(|\\\[")
# Text inside these is code or maths, where $ and \( are meant literally.
LITERAL = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw,
           nodes.comment, nodes.FixedTextElement, nodes.system_message)


def drop_colab_badges(app, doctree) -> None:
    for image in list(doctree.findall(nodes.image)):
        if COLAB_BADGE not in image.get("uri", ""):
            continue
        node = image.parent if isinstance(image.parent, nodes.reference) else image
        parent = node.parent
        parent.remove(node)
        if isinstance(parent, nodes.paragraph) and not parent.astext().strip():
            parent.parent.remove(parent)


def check_raw_tex(app, doctree, docname: str) -> None:
    for text in doctree.findall(nodes.Text):
        node = text.parent
        if any(isinstance(a, LITERAL) for a in _ancestors(node)):
            continue
        found = RAW_TEX.search(text.astext())
        if found:
            snippet = text.astext()[max(0, found.start() - 30):found.end() + 30].replace("\n", " ")
            logger.warning("raw TeX left in the page (a formula Markdown did not parse): %r",
                           snippet, location=node, type="ntk", subtype="raw_tex")


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


class AuthorYearLabels(BaseLabelStyle):
    """Labels as sphinxcontrib-bibtex's author_year citations read: "Du et al., 2019"."""

    def format_labels(self, sorted_entries):
        labels = [self._label(entry) for entry in sorted_entries]
        seen: dict[str, int] = {}
        for label in labels:  # two works by the same authors in one year: 2019a, 2019b
            if labels.count(label) == 1:
                yield label
            else:
                seen[label] = seen.get(label, 0) + 1
                yield label + chr(ord("a") + seen[label] - 1)

    @staticmethod
    def _label(entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(n.render_as("text") for n in p.rich_last_names) for p in people]
        if len(last) > 2:
            names = f"{last[0]} et al."
        else:
            names = " and ".join(last)
        return f"{names}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt entries (they end with the DOI or arXiv link), author–year labels,
    sorted by author then year."""

    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.formatting", "ntk", AuthorYearStyle)
    app.connect("doctree-read", drop_colab_badges)
    app.connect("doctree-resolved", check_raw_tex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
