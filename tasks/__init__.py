"""The task registry: one plain dict, one line per task.

A new task is one new module ending in `TASK = Task(...)` plus one line here.
"""

from typing import Any

from suite.task import Task
from tasks import (cell_microscopy, machinery_proximity, pedestrians, speech_commands, traffic_signs,
                   voice_commands)

TASKS: dict[str, Task[Any, Any]] = {
    "traffic_signs": traffic_signs.TASK,
    "speech_commands": speech_commands.TASK,
    "cell_microscopy": cell_microscopy.TASK,
    "pedestrians": pedestrians.TASK,
    "machinery_proximity": machinery_proximity.TASK,
    "voice_commands": voice_commands.TASK,
}
