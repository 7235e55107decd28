"""The Telegram channel: ``parse`` (update → ``Inbound``), ``render`` (``Reply`` → Telegram
messages, pure), ``adapter`` (the bot: inbound path, sending one message, typing), ``route``
(the webhook and mounting), ``config`` (its settings)."""
