"""Customer text made inert for the agents' console: agents read what the customer typed, but
nothing in it is a live link, a mention or a link label that hides its address.

Customer text reaches agents inside our own markdown (``Reply.text``), which the Slack renderer
turns into mrkdwn: there ``[label](https://…)`` would become a live ``<https://…|label>`` link
and a bare ``evil.example/login`` would be linked by Slack itself. So schemes and host names are
"defanged" the way security teams share indicators (``hxxps://evil[.]example``): still legible,
never clickable. Mentions (``<!channel>``, ``<@U…>``) are already harmless, because the renderer
escapes ``<``, ``>`` and ``&``. Email addresses stay as they are: agents write back to them.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"\b(h)(tt)(ps?)(:|%3a)", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"\b(ftp|file|javascript|data|slack|tel|sms)(:)", re.IGNORECASE)
# A host name: labels joined by dots, ending in a TLD-like label; not the domain of an email
# address (after "@") and not the local part of one (before "@").
_HOST = re.compile(
    r"(?<![@\w.-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63})\b(?![\w.-]*@)",
    re.IGNORECASE,
)


def inert(text: str) -> str:
    """``text`` with every URL scheme and host name defanged (``hxxps://shop[.]example``)."""
    out = _SCHEME.sub(lambda m: f"{m.group(1)}xx{m.group(3)}{m.group(4)}", text)
    out = _OTHER_SCHEME.sub(lambda m: f"{m.group(1)}[:]", out)
    return _HOST.sub(lambda m: m.group(1).replace(".", "[.]"), out)
