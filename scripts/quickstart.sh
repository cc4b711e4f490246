#!/usr/bin/env bash
# Install the appliance into ./.venv and start it on its embedded default: SQLite in ./var, site BER (Berlin),
# no broker, demo data. Safe to run again: it keeps what exists and replays demo movements idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap_venv.sh

export APPLIANCE_CONFIG="$PWD/var/appliance.toml"
app=.venv/bin/appliance
mkdir -p var
if [ ! -f "$APPLIANCE_CONFIG" ]; then
    $app init --site BER --site-name Berlin --db appliance.db >/dev/null
else
    $app init >/dev/null
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

$app stock
cat <<MSG

The appliance is installed and its ledger is ready: $(.venv/bin/python -c 'import sys; print(sys.argv[1])' "$PWD/var/appliance.db")
(configuration: $APPLIANCE_CONFIG). The web UI arrives with its issue; until then:

    export APPLIANCE_CONFIG=$APPLIANCE_CONFIG
    $app stock --lots                 # what is where
    $app scan dock-1 CMD-RECEIVE      # scan by hand as a gun at station dock-1 would:
    $app scan dock-1 BER-DOCK         #   receive into the dock,
    $app scan dock-1 4006381333931    #   one bag of DOG-DRY-5 (its EAN-13)
    $app print-command-sheet -o var/commands.pdf   # the command barcodes for the wall
    $app move ship --sku DOG-DRY-5 --location BER-A-01 --qty 3
    $app history --sku DOG-DRY-5      # every movement, newest first
    $app check                        # stock recomputed from movements
    $app --help
MSG
