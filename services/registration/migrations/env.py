from services.registration.models import metadata
from shared.migrations_env import run

run(metadata)
