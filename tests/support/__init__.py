"""Running the real system for tests: the four services as subprocesses (the
same ``python -m services.<name>`` commands ``make run-<service>`` uses) in a
RabbitMQ vhost of their own, with SQLite or PostgreSQL databases of their own,
and a real SMTP server (aiosmtpd) that keeps what it receives.

One module per concern:

- ``paths``: the checkout's root and temporary directories
- ``ports``: free TCP ports on localhost
- ``waiting``: polling until a condition holds
- ``mail``: the SMTP server and the mailbox it fills
- ``broker``: RabbitMQ vhosts of the tests' own
- ``databases``: PostgreSQL databases of the tests' own
- ``tools``: the external tools make test installs
- ``documents``: event documents as the admin API takes them
- ``processes``: one service as a subprocess
- ``client``: the HTTP API, as a client uses it
- ``stack``: the whole system for one test module
"""
