"""The body of every service's Alembic env.py: migrate on the connection the
start-up hands over (or on the URL given to the alembic command line)."""
from alembic import context
from sqlalchemy import MetaData, create_engine


def run(metadata: MetaData) -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection, metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "give the database with -x or sqlalchemy.url"
    with create_engine(url).begin() as connection:
        _migrate(connection, metadata)


def _migrate(connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
