"""What the audit cites to users: the public documentation, never the team's internal notes
(the rule tables record which section of delegates.md each rule came from; users do not
have that file)."""
from __future__ import annotations

import re

PUBLIC_DOCS = {
    "1": "https://coral.ai/docs/edgetpu/models-intro/",
    "2": "https://ai.google.dev/edge/litert/android/delegates/hexagon",
    "3": "https://ai.google.dev/edge/litert/performance/gpu",
    "4": "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/delegates/xnnpack/README.md",
}
_SECTION = re.compile(r"delegates\.md\s*(?:§|section\s*)(\d)(?:\.\d+)*")
# Rule tables name pages by host and path; a user gets a link they can open.
_BARE_PAGE = re.compile(r"(?<![/\w.])((?:coral\.ai|tensorflow\.org|ai\.google\.dev|github\.com)/\S*)")


def public(text: str) -> str:
    """A rule source or note with internal delegates.md references replaced by public docs."""
    text = _SECTION.sub(lambda m: PUBLIC_DOCS.get(m.group(1), "the delegate's public documentation"), str(text))
    text = text.replace("delegates.md", "the delegates' public documentation")
    return _BARE_PAGE.sub(r"https://\1", text)
