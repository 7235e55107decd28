"""The web agents' console at ``/agent``: accounts and sign-in (``accounts``), the queue and
one conversation's view and actions (``console``), the page's files (``static/``)."""
