"""The Slack channel: ``parse`` (events → ``Inbound``), ``render`` (``Reply`` → Block Kit,
pure), ``adapter`` (bolt and the client: listeners, posting one message), ``route`` (the events
route and mounting), ``requests`` (what stands between a request and bolt), ``private``
(answering shared-channel messages in a DM), ``console`` (the agents' console of handoff),
``config`` (its settings)."""
