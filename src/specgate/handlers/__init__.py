"""Thin async handlers, one module per service. Each declares the action and the version key it
applies from with ``@action``; it then serves later keys too, until another handler takes over."""

MODULES = ("auth", "server", "users", "projects", "tasks", "queues", "workers", "events", "async_calls", "datarobot", "cvat", "qarnot")
