"""MkDocs hook: the scenario reference is generated from the schema at every build
(``sinsim.scenario.reference``), so the page cannot drift from the code."""

MARKER = "<!-- scenario-reference -->"


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    from sinsim.scenario.reference import markdown as reference

    return markdown.replace(MARKER, reference())
