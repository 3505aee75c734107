#!/bin/sh
# Start the local RabbitMQ and PostgreSQL if they are installed but not running
# (the README gives the same commands). Says clearly what is missing.
set -u

wait_for() {  # wait_for <what> <command...>
    what=$1; shift
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 60 ]; then echo "error: $what did not come up in 60s" >&2; exit 1; fi
        sleep 1
    done
}

if command -v rabbitmqctl >/dev/null 2>&1; then
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
        echo "starting RabbitMQ (rabbitmq-server -detached)"
        rabbitmq-server -detached >/dev/null 2>&1 || true
        wait_for RabbitMQ rabbitmqctl -q await_startup
    fi
elif ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    echo "error: RabbitMQ is not installed and nothing listens on 127.0.0.1:5672;" \
         "install it (apt-get install rabbitmq-server) or set AMQP_URI" >&2
    exit 1
fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        version=$(ls /etc/postgresql | sort -n | tail -1)
        echo "starting PostgreSQL $version (pg_ctlcluster $version main start)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
            || pg_ctlcluster "$version" main start
        wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
    fi
else
    echo "note: PostgreSQL is not installed; the PostgreSQL tests will fail" \
         "(apt-get install postgresql, or set TEST_POSTGRES_URL)" >&2
fi
