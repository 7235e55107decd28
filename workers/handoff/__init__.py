"""Human handoff, in one place: ``state`` (which turns the bot answers and which go to a person,
run inside the turn before and after the brain) and ``timeout`` (the agent timeout task).

The record of a handoff is ``brain.types.Handoff`` (it lives in the session the brain keeps);
its Redis keys and payloads are under "handoff" in ``channels.constants``; the agents' console
(the Slack side) is ``gateway.slack``.
"""
