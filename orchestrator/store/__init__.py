from ..errors import TaskNotFound
from .repository import Store, make_engine, migrate_database

__all__ = ["Store", "TaskNotFound", "make_engine", "migrate_database"]
