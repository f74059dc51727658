"""Student-controlled text made safe to show: exception messages, printed output, file and folder names.

Where the grader shows such text, and what could go wrong there:

* a **terminal** (the instructor's ``grade`` output, Gradescope's stdout box): escape sequences (ESC, CSI,
  OSC 8 links, ``\\r`` overwriting a line, BEL), and bidirectional controls that display text in another order
  than it is (Trojan Source, CVE-2021-42574);
* a **spreadsheet** opening the CSV: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return (or their full-width forms) is read as a formula (OWASP, "CSV Injection");
* a **web page**: Gradescope shows results.json in the browser, where ``output_format`` decides whether HTML is
  rendered (https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-string-formatting).

What the grader does: every piece of student text is passed through ``clean`` when a reason is made (one line,
at most ``limit`` characters, control and bidirectional characters shown as escapes such as ``\\x1b``, memory
addresses masked so that grading twice gives the same words), so reports and the terminal get plain
printable text; ``csv_cell`` neutralizes formulas in the CSV's text columns; results.json declares every
output and name ``"text"`` (Gradescope renders no HTML, Markdown or ANSI there).  The grader writes no HTML
of its own; ``html`` is for anyone who puts these texts into a page.
"""

from __future__ import annotations

import html as _html
import re

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _escape(m: re.Match) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def clean(text, limit: int = 300) -> str:
    """One printable line: whitespace runs become one space, control and bidirectional characters become
    visible escapes, memory addresses ``0x…``; cut to ``limit`` characters (``…`` marks the cut)."""
    s = " ".join(str(text).split())
    s = _UNSAFE.sub(_escape, s)
    s = _ADDRESS.sub("0x…", s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def csv_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading ``'`` when it would start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def html(text: str) -> str:
    """Text for an HTML page: ``<``, ``>``, ``&`` and quotes escaped."""
    return _html.escape(text, quote=True)
