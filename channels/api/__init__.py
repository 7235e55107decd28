"""The plain HTTP channel (``POST /api/chat``, ``omnigate chat``): ``parse`` (body →
``Inbound``), ``render`` (reply → live event, pure), ``adapter`` (publishing one event),
``route`` (the handler and mounting), ``config`` (its settings)."""
