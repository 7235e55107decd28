"""Every Redis key prefix, stream, queue and task name of omnigate, in one place.

Keys are namespaced under ``og:``; ``conv`` below is a conversation key, ``channel:conversation``
(see ``channels.schema.Inbound.conversation_key``).
"""

from __future__ import annotations

PREFIX = "og:"

# --- inbound ------------------------------------------------------------------------------
# SET NX with a TTL: one key per (channel, platform_id) already accepted.
DEDUPE = PREFIX + "dedupe:"  # + channel:platform_id
# Per-conversation FIFO of inbound messages waiting for their turn (LIST, RPUSH / LMOVE).
INBOX = PREFIX + "inbox:"  # + conv
# The message a worker is on right now (LIST of at most one), so a killed worker loses nothing.
PROCESSING = PREFIX + "processing:"  # + conv
# SET of conversations with waiting messages: what the workers' sweeper looks at.
ACTIVE = PREFIX + "active"
# Set (with a TTL) while a turn task of the conversation is queued: ingress, the turn chain and
# every sweeper enqueue only when they set it, so a conversation is in the queue once.
SCHEDULED = PREFIX + "scheduled:"  # + conv
# How many turns took the message now in processing (a message that kills its worker).
ATTEMPTS = PREFIX + "attempts:"  # + conv
# Inbound messages counted per minute: + "conv:" + conv or "addr:" + client address.
INBOUND_RATE = PREFIX + "rate-in:"
# The conversation lock: one turn at a time across all workers.
LOCK = PREFIX + "lock:"  # + conv
# Marks an inbound message whose reply has been written (idempotent turns after a crash).
TURN_DONE = PREFIX + "turn-done:"  # + inbound id
# When each conversation's quiet period is up (ZSET conv → unix time), and what its notice
# carries (HASH conv → JSON): the workers' sweep queues the notices that are due.
QUIET = PREFIX + "quiet"
QUIET_ARGS = PREFIX + "quiet-args"
# Next reply sequence number of a conversation (INCR).
SEQ = PREFIX + "seq:"  # + conv

# --- memory -------------------------------------------------------------------------------
SESSION = PREFIX + "session:"  # + conv  (JSON: history, slots, state)

# --- replies ------------------------------------------------------------------------------
REPLY_STREAM = PREFIX + "replies"
REPLY_GROUP = "gateway"
# Marks one platform message of a reply already sent (a reply may be several messages: split
# text, product cards), so a stream entry taken up again sends only what was not sent. Set by
# the gateway's delivery, the one place that sends.
SENT = PREFIX + "sent:"  # + stream entry id:reply index:part
# Last reply sequence number handed to the platform, per conversation: replicas deliver in order.
DELIVERED = PREFIX + "delivered:"  # + conv
# Held (with a short TTL) by the replica sending a conversation's reply right now: a replica
# holding the next reply waits while it exists, however long a multi-part reply takes.
DELIVERING = PREFIX + "delivering:"  # + conv
# A reply streamed while it is generated (``kind: delta`` entries of the reply stream): the
# platform message its preview grows in (+ conv:Inbound.id → the adapter's handle, or
# "final:<handle>" once the checked reply replaced it), and the lease of whoever edits it now.
PREVIEW = PREFIX + "preview:"  # + conv:turn (the Inbound.id answered)
PREVIEW_EDITING = PREFIX + "preview-editing:"  # + conv:turn
# How many times a reply-stream entry was taken up without being delivered.
REPLY_ATTEMPTS = PREFIX + "reply-attempts:"  # + stream entry id
# Messages and replies given up on (poison, unreadable, undeliverable): LIST of JSON objects,
# newest last, shown by `omnigate dead-letters`.
DEAD_LETTERS = PREFIX + "dead-letters"
# Pub/Sub channel that reaches whichever gateway replica holds a conversation's live client.
LIVE = PREFIX + "live:"  # + conv
# Web chat log: ZSET of reply frames scored by seq, replayed on resume and reload.
WEB_LOG = PREFIX + "weblog:"  # + conv

# --- workers ------------------------------------------------------------------------------
# ZSET of worker process names scored by their last heartbeat (Unix seconds): counted with
# ZCOUNT, never by scanning the keyspace.
WORKERS = PREFIX + "workers"
WORKER_ALIVE_S = 15  # a worker whose heartbeat is older than this counts as gone

# --- rate limits --------------------------------------------------------------------------
RATE = PREFIX + "rate:"  # + channel:scope

# --- handoff ------------------------------------------------------------------------------
AGENT_THREAD = PREFIX + "agent-thread:"  # + slack thread ts -> conv
AGENT_THREAD_OF = PREFIX + "agent-thread-of:"  # + conv -> slack thread ts (the reverse)
# SET of conversation keys now with an agent (what `/omnigate resolve` offers to close).
HANDOFF_OPEN = PREFIX + "handoff-open"
# The payload of the agents' "Return to bot" button (+ ":" + conv); the console sends it back
# into the customer's conversation, where the handoff state machine closes the handoff.
RESOLVE_PAYLOAD = "og:resolve"
# The web agents' console's "Close": the handoff ends with a goodbye instead of "back with the
# bot" (the conversation is with the bot afterwards all the same).
CLOSE_PAYLOAD = "og:close"

# --- the web agents' console (``gateway.agents``) -------------------------------------------
# HASH per agent account: kdf, salt, hash (``omnigate agent add``).
AGENT_ACCOUNT = PREFIX + "agent-account:"  # + agent name
# A signed-in agent's session (JSON: agent, csrf token), expiring: + random session id.
AGENT_SESSION = PREFIX + "agent-session:"  # + session id
# Failed sign-ins per window (INCR, expiring): + "name:" + agent name | "addr:" + client address.
AGENT_LOGIN_FAILS = PREFIX + "agent-login-fails:"
# Which agent took a handoff (SET NX): + conv + ":" + handoff id, so a later handoff is free.
AGENT_CLAIM = PREFIX + "agent-claim:"
# The live fan-out's name (``LIVE`` + this) for "the queue or a conversation with an agent
# changed": the worker publishes it after each turn of a handed-off conversation.
AGENTS_LIVE = "agents"

# --- buttons ------------------------------------------------------------------------------
# A button payload too long for its platform's button (``channels.payloads``).
BUTTON_PAYLOAD = PREFIX + "button-payload:"  # + short key -> payload

# --- the email gate ---------------------------------------------------------------------------
# Wrong order/email pairs per email, order or client over a window (INCR, expiring).
GUESSES = PREFIX + "guesses:"  # + email:<email> | order:<id> | client:<address or identity>

# A web visitor session's start (Unix seconds), expiring at the session's maximum age: a token
# renews only while this lives, so a stolen token cannot be renewed forever.
WEB_SESSION = PREFIX + "web-session:"  # + session id

# --- people (``omnigate forget``) ---------------------------------------------------------
# SET of the conversation keys a person wrote in, per platform identity and per verified email;
# they live as long as the conversations' memory.
PERSON = PREFIX + "person:"  # + channel:user_id
PERSON_EMAIL = PREFIX + "person-email:"  # + lower-cased email

# --- conversation records (``gateway.records``: what ``omnigate stats`` and /admin count) ------
# LIST of one conversation key's conversations (JSON records, newest last, at most
# ``RECORDS_KEEP``), expiring after the retention setting.
RECORDS = PREFIX + "records:"  # + conv
RECORDS_KEEP = 50
# ZSET of conversation keys scored by their last recorded activity (Unix seconds).
RECORDS_INDEX = PREFIX + "records"
# The satisfaction question's buttons: + ":yes" / ":no".
CSAT_PAYLOAD = "og:csat"
# Counts the workers add up for the gateway's /metrics (HASH of field -> number).
WORKER_METRICS = PREFIX + "worker-metrics"

# --- feedback (``gateway.feedback``: what ``omnigate learn`` retrains the intent model with) ----
# HASH of one conversation key's feedback examples: example id -> JSON (the customer's redacted
# words, what the bot took them for, the label a pick or an agent gave, the thumbs-down flag),
# expiring after the records retention.
FEEDBACK = PREFIX + "feedback:"  # + conv
# ZSET of conversation keys with feedback examples, scored by the last write (Unix seconds).
FEEDBACK_INDEX = PREFIX + "feedback"
# LIST of the customer's latest messages the bot answered, with what it took them for (JSON,
# newest last, at most ``FEEDBACK_TURNS_KEEP``): what a pick, a thumbs-down or an agent's
# settling turns into examples. It lives as long as the conversation's memory.
FEEDBACK_TURNS = PREFIX + "feedback-turns:"  # + conv
FEEDBACK_TURNS_KEEP = 20

# --- recommender --------------------------------------------------------------------------
CLICKS = PREFIX + "clicks:"  # + user key (LIST of skus)

# --- Celery -------------------------------------------------------------------------------
QUEUE_BRAIN = "brain"
QUEUE_DELIVER = "deliver"
TASK_TURN = "omnigate.turn"
TASK_HANDOFF_TIMEOUT = "omnigate.handoff_timeout"
CELERY_KEY_PREFIX = PREFIX + "celery:"
