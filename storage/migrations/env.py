"""Alembic environment for copyhound, driven from code (see storage.engine.upgrade).

`upgrade()` passes an open connection in `config.attributes["connection"]`; developer
commands without one (e.g. autogenerate through `alembic_config()`) fall back to the
configured `sqlalchemy.url` or to `default_db_url()`. No logging is configured here:
a library must not touch the application's logging setup.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.engine import default_db_url, make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


# Tables other libraries keep in our database (APScheduler's job store): not ours to
# migrate, and autogenerate must not propose dropping them.
FOREIGN_TABLES = frozenset({"copyhound_scheduler_jobs"})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or default_db_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or default_db_url())
    try:
        with engine.connect() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
