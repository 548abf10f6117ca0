"""Task plug-ins: the `Task` protocol, `@register_task`, and lookup by name or by run folder.

Engine layer: imports only `runs`, `errors`, `console`; modalities register their tasks here
when `medsight.modalities` imports them, and the CLI and the service dispatch only here.
"""

from medsight.tasks.registry import (
    Task,
    get_task,
    list_tasks,
    register_task,
    task_of_run,
)

__all__ = ["Task", "get_task", "list_tasks", "register_task", "task_of_run"]
