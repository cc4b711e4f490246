#!/usr/bin/env bash
# Install the appliance into ./.venv and start it on its embedded default: SQLite in ./var, site BER (Berlin),
# no broker, demo data, a fake scanner (a socket), the web UI on port 8080; prints the URL and the login.
# Safe to run again: it keeps what exists, replays demo movements idempotently and restarts the services.
# `scripts/quickstart.sh stop` stops them. APPLIANCE_VAR (default ./var) and APPLIANCE_PORT (8080) move them.
set -euo pipefail
cd "$(dirname "$0")/.."
var=${APPLIANCE_VAR:-$PWD/var}
port=${APPLIANCE_PORT:-8080}
app=.venv/bin/appliance
export APPLIANCE_CONFIG="$var/appliance.toml"

stop() {  # a service started by an earlier run
    local pidfile="$var/$1.pid" pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}
if [ "${1:-}" = stop ]; then
    stop web; stop agent
    exit 0
fi

scripts/bootstrap_venv.sh
mkdir -p "$var"
if [ ! -f "$APPLIANCE_CONFIG" ]; then
    $app init --site BER --site-name Berlin --db appliance.db >/dev/null
    # The fake scanner: `echo 4006381333931 | nc -U var/scan.sock` scans as a gun at station "demo" would.
    printf '\n[[scanner]]\nkind = "replay"\nstation = "demo"\npath = "scan.sock"\nsocket = true\n' \
        >>"$APPLIANCE_CONFIG"
else
    $app init >/dev/null
fi
if [ ! -s "$var/admin-password" ]; then
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))' >"$var/admin-password")
    $app user passwd admin --password-stdin <"$var/admin-password" 2>/dev/null
fi

# Demo data: a few locations, a small pet-shop catalog (a German Excel CSV), some stock.
existing=$($app location list --json)
add_location() {
    grep -q "\"code\": \"$1\"" <<<"$existing" || $app location add "$@" >/dev/null
}
add_location BER --name "Berlin warehouse" --kind warehouse
add_location BER-DOCK --name "Goods in" --kind dock --parent BER
add_location BER-A-01 --name "Aisle A, bay 1" --parent BER
add_location BER-A-02 --name "Aisle A, bay 2" --parent BER
$app import products scripts/demo/products.csv >/dev/null
demo_move() {  # quiet unless it fails
    local err
    err=$($app move "$@" --user admin 2>&1 >/dev/null) || { echo "$err" >&2; return 1; }
}
demo_move receive --sku DOG-DRY-5 --location BER-A-01 --qty 120 --lot L2611 --expiry 2027-11-30 --op-id demo-1
demo_move receive --sku DOG-DRY-15 --location BER-A-01 --qty 40 --op-id demo-2
demo_move receive --sku DOG-WET-400 --location BER-A-02 --qty 480 --lot W2610 --expiry 2027-04-30 --op-id demo-3
demo_move receive --sku CAT-LITTER-10 --location BER-A-02 --qty 60 --op-id demo-4
demo_move receive --sku CAT-TOY-MOUSE --location BER-A-02 --qty 200 --op-id demo-5
demo_move ship --sku DOG-DRY-5 --location BER-A-01 --qty 7 --ref ORD-1001 --op-id demo-6
demo_move reserve --sku DOG-DRY-5 --location BER-A-01 --qty 5 --ref ORD-1002 --op-id demo-7
demo_move transfer --sku CAT-LITTER-10 --from BER-A-02 --to BER-DOCK --qty 10 --op-id demo-8

# The two long-running processes, as systemd runs them on a box (there: appliance-agent and appliance-web).
stop web; stop agent
nohup "$app" agent >"$var/agent.log" 2>&1 &
echo $! >"$var/agent.pid"
nohup "$app" web --bind "0.0.0.0:$port" >"$var/web.log" 2>&1 &
echo $! >"$var/web.pid"
if ! .venv/bin/python - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
then
    echo "the web UI did not start; its log:" >&2
    tail -20 "$var/web.log" >&2
    exit 1
fi

$app stock
address=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<MSG

The appliance is running: open  http://${address:-localhost}:$port/  (or http://localhost:$port/ on this machine)
and log in as admin with the password in $var/admin-password ($(cat "$var/admin-password")).
Ledger: $var/appliance.db; configuration: $APPLIANCE_CONFIG; logs: $var/web.log, $var/agent.log.
The dock screen for the fake scanner is http://localhost:$port/dock/demo:
    echo 4006381333931 | nc -U $var/scan.sock      # scans as a gun at station "demo" would

From the command line:
    export APPLIANCE_CONFIG=$APPLIANCE_CONFIG
    $app stock --lots                 # what is where
    $app scan dock-1 CMD-RECEIVE      # scan by hand as a gun at station dock-1 would:
    $app scan dock-1 BER-DOCK         #   receive into the dock,
    $app scan dock-1 4006381333931    #   one bag of DOG-DRY-5 (its EAN-13)
    $app print-command-sheet -o $var/commands.pdf   # the command barcodes for the wall
    $app move ship --sku DOG-DRY-5 --location BER-A-01 --qty 3
    $app history --sku DOG-DRY-5      # every movement, newest first
    $app check                        # stock recomputed from movements
    $app --help
    scripts/quickstart.sh stop        # stop the web UI and the agent
MSG
