"""Human handoff, the worker's part: ``state`` (which turns the bot answers and which go to a
person, run inside the turn before and after the brain) and ``timeout`` (the agent timeout task).

The rest of the feature sits at the lowest layer that can hold it: the record of a handoff, the
agents' messages and the console's bookkeeping are ``channels.handoff`` (the brain's session
holds the record); the agents' console, which runs in the gateway, is
``channels.slack.console``; its Redis keys and payloads are under "handoff" in
``channels.constants``.
"""
