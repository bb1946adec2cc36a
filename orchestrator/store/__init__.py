from .repository import Store, TaskNotFound, make_engine

__all__ = ["Store", "TaskNotFound", "make_engine"]
