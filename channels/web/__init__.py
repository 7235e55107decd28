"""The web chat channel: ``POST /web/session``, ``GET /web/ws``, the widget
(``GET /web/widget.js``) and the demo shop page (``GET /``) in ``route``; client frames in
``parse``, server frames in ``render`` (pure); the reply log and live publishing in ``adapter``;
visitor tokens in ``tokens``; the socket's state and disconnect in ``socket``; one open widget
in ``connection``; which reply seqs a visitor already has in ``sequence``; its settings in
``config``; the widget's files in ``static/``.

A visitor gets a signed token (``tokens``), then opens a websocket with it. Each
socket is a ``VisitorConnection``: it reads client frames (messages go to ingress, like every
channel's) and forwards the conversation's live frames (published by ``adapter.WebAdapter`` on
whichever replica delivered them). ``resume`` replays the conversation's Redis log, so a
reload, a dropped connection or a gateway restart loses nothing, on any number of replicas and
without sticky sessions.

Replay against live: the connection subscribes before it reads the log, sends the log, and then
drops live reply frames whose seq it has already sent. Both paths send under one lock, so the
visitor sees each seq once and in order.
"""
