from services.capacity.models import metadata
from shared.migrations_env import run

run(metadata)
