from .repository import Store, TaskNotFound, make_engine, migrate_database

__all__ = ["Store", "TaskNotFound", "make_engine", "migrate_database"]
