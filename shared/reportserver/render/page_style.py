"""The look of a report as a web page: the html export and the embedded report view share it (no
pyarrow here, so the API functions may import it)."""

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.2em; margin: 1.5em 0 .5em; }
.meta { color: #555; margin: 0 0 1em; } .meta dt { font-weight: 600; float: left; clear: left; margin-right: .5em; }
.meta dd { margin: 0 0 .2em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; vertical-align: top; }
th { background: #f2f2f2; position: sticky; top: 0; text-align: left; }
td.n { text-align: right; white-space: nowrap; } td.null { color: #aaa; }
tr:nth-child(even) td { background: #fafafa; }
"""
