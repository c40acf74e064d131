"""Notifications: the weekly report and level-drop alerts delivered to Slack, exactly once.

``slack`` posts (webhook or bot token, retries, secrets, the breaker), ``deadline`` ends each
request by its deadline (connect, send and read together), ``delivery`` makes a message go out
once per channel (claims and attempts in the database), ``sources`` finds the builders of
``engine.reports``, and ``jobs`` holds what the CLI, the schedulers and the evaluation
callers run.
"""
