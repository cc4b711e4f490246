#!/usr/bin/env bash
# Make the broker's TLS files and the per-site MQTT credentials of the warehouse appliance.
#
#   scripts/broker_credentials.sh [--dir DIR] [--days N] [--host NAME]... SITE [SITE...]
#
# In DIR (default /etc/mosquitto/appliance), creating only what is missing, so running it again with the
# same or more sites is safe and changes nothing that exists:
#   ca.crt ca.key         the appliance MQTT CA (EC P-256, 10 years); ca.key never leaves this host
#   server.crt server.key the broker's certificate: CN = the first host, SAN = every --host
#                         (default: $(hostname) and localhost)
#   passwd                one line per site (mosquitto_passwd), acl (the shipped ACL, if missing)
#   sites/SITE/           what the box of SITE needs: ca.crt, SITE.crt (CN = SITE), SITE.key, password
# Files the broker reads are group `mosquitto`, mode 0640, when run as root and that group exists: Mosquitto
# reads them after dropping root privileges. Keys and passwords are 0600.
#
# Never overwritten: the CA, any key, any certificate, any password. To renew a certificate, delete the .crt
# and run again (its key is kept). To give a site a new password, delete its line from passwd
# (`mosquitto_passwd -D DIR/passwd SITE`) and DIR/sites/SITE/password, then run again.
set -euo pipefail

readonly SITE_RULE='a site id is 2-8 upper-case letters/digits starting with a letter, e.g. BER'
readonly CA_DAYS=3650
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly SHIPPED_ACL="$SCRIPT_DIR/../firmware-config/mosquitto/acl"

usage() {
    cat <<EOF
usage: $0 [--dir DIR] [--days N] [--host NAME]... SITE [SITE...]

  --dir DIR    where the broker's files live (default /etc/mosquitto/appliance)
  --days N     validity of new server and site certificates in days (default 825)
  --host NAME  a name or IP address the boxes use to reach the broker; repeat for several
               (default: $(hostname) and localhost). The first one is the certificate's CN.
  SITE         site ids ($SITE_RULE)
EOF
}

die() {
    printf '%s: error: %s\n' "$(basename -- "$0")" "$*" >&2
    exit 1
}

note() {
    printf '%s\n' "$*"
}

dir=/etc/mosquitto/appliance
days=825
hosts=()
sites=()
while (($#)); do
    case $1 in
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; dir=$2; shift 2 ;;
        --dir=*) dir=${1#--dir=}; shift ;;
        --days) [[ $# -ge 2 ]] || die "--days needs a value"; days=$2; shift 2 ;;
        --days=*) days=${1#--days=}; shift ;;
        --host) [[ $# -ge 2 ]] || die "--host needs a value"; hosts+=("$2"); shift 2 ;;
        --host=*) hosts+=("${1#--host=}"); shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; sites+=("$@"); break ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) sites+=("$1"); shift ;;
    esac
done

((${#sites[@]})) || { usage >&2; die "name at least one site"; }
[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || die "--days must be a whole number of days from 1 to 99999, not '$days'"
[[ -n $dir ]] || die "--dir must not be empty"
for site in "${sites[@]}"; do
    # Same rule as appliance/sync/topics.py SITE_ID; the ACL pattern relies on it.
    [[ $site =~ ^[A-Z][A-Z0-9]{1,7}$ ]] || die "bad site id '$site': $SITE_RULE"
done
((${#hosts[@]})) || hosts=("$(hostname)" localhost)
for host in "${hosts[@]}"; do
    [[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$ ]] || die "bad --host '$host': expected a DNS name or an IP address"
done
for tool in openssl mosquitto_passwd; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install openssl mosquitto)"
done

# Group `mosquitto` only when we can set it: as root, where the Debian package created the group.
broker_group=
if [[ $(id -u) -eq 0 ]] && getent group mosquitto >/dev/null; then
    broker_group=mosquitto
fi

# Restrict a file the broker reads: 0640, group mosquitto when possible.
broker_file() {
    chmod 0640 "$1"
    if [[ -n $broker_group ]]; then chgrp "$broker_group" "$1"; fi
}

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
umask 077

# --- Check everything before creating anything ---------------------------------------------------------------
passwd_has() {
    [[ -f "$dir/passwd" ]] && grep -q "^$1:" "$dir/passwd"
}
for site in "${sites[@]}"; do
    # A box already holds this password; its bundle was removed after delivery. Making a new one would lock it out.
    if passwd_has "$site" && [[ ! -f "$dir/sites/$site/password" ]]; then
        die "site $site has a password in $dir/passwd but $dir/sites/$site/password is gone (the bundle was" \
            "removed after delivery?). To issue a new password: mosquitto_passwd -D $dir/passwd $site; then run again."
    fi
done
if [[ -f "$dir/ca.key" && ! -f "$dir/ca.crt" ]]; then
    die "$dir/ca.key exists without $dir/ca.crt; restore ca.crt (a new one would not match the boxes' copies)"
fi

mkdir -p -- "$dir/sites"
chmod 0750 "$dir"
chmod 0700 "$dir/sites"
if [[ -n $broker_group ]]; then chgrp "$broker_group" "$dir"; fi

# --- CA ------------------------------------------------------------------------------------------------------
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
    chmod 0600 "$1"
}

if [[ ! -f "$dir/ca.crt" ]]; then
    new_key "$dir/ca.key"
    cat >"$tmp/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = Warehouse appliance MQTT CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -x509 -config "$tmp/ca.cnf" -key "$dir/ca.key" -sha256 -days "$CA_DAYS" -out "$dir/ca.crt"
    note "created CA $dir/ca.crt (valid $CA_DAYS days)"
fi
broker_file "$dir/ca.crt"

# sign NAME KEY CERT EXTENSIONS: a certificate for KEY with CN = NAME, signed by the CA.
sign() {
    local name=$1 key=$2 cert=$3 extensions=$4
    [[ -f "$dir/ca.key" ]] || die "cannot issue $cert: $dir/ca.key is not on this host (CA key kept offline?)"
    openssl req -new -key "$key" -subj "/CN=$name" -out "$tmp/req.csr"
    printf '%s\n' "[leaf]" "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" "$extensions" >"$tmp/leaf.cnf"
    # Quiet on success ("Certificate request self-signature ok"), but show why on failure.
    if ! openssl x509 -req -in "$tmp/req.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$days" \
        -extfile "$tmp/leaf.cnf" -extensions leaf -out "$cert" 2>"$tmp/x509.err"; then
        cat -- "$tmp/x509.err" >&2
        rm -f -- "$cert"
        die "could not sign $cert"
    fi
    chmod 0644 "$cert"
}

# --- Broker certificate --------------------------------------------------------------------------------------
sans=()
for host in "${hosts[@]}"; do
    if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then sans+=("IP:$host"); else sans+=("DNS:$host"); fi
done
[[ -f "$dir/server.key" ]] || new_key "$dir/server.key"
broker_file "$dir/server.key"
if [[ ! -f "$dir/server.crt" ]]; then
    sign "${hosts[0]}" "$dir/server.key" "$dir/server.crt" \
        "extendedKeyUsage = serverAuth"$'\n'"subjectAltName = $(IFS=,; printf '%s' "${sans[*]}")"
    note "created broker certificate $dir/server.crt for ${hosts[*]} (valid $days days)"
else
    have=$(openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')
    have=${have//IPAddress:/IP:}
    for want in "${sans[@]}"; do
        if [[ ",$have," != *",$want,"* ]]; then
            note "warning: $dir/server.crt does not name $want (it has: ${have:-nothing});" \
                "delete it and run again to reissue with the same key" >&2
        fi
    done
fi
broker_file "$dir/server.crt"

# --- ACL and password file -----------------------------------------------------------------------------------
if [[ ! -f "$dir/acl" ]]; then
    [[ -f $SHIPPED_ACL ]] || die "shipped ACL $SHIPPED_ACL not found"
    cp -- "$SHIPPED_ACL" "$dir/acl"
    note "installed ACL $dir/acl"
fi
broker_file "$dir/acl"
[[ -f "$dir/passwd" ]] || : >"$dir/passwd"

# --- Sites ---------------------------------------------------------------------------------------------------
for site in "${sites[@]}"; do
    bundle="$dir/sites/$site"
    mkdir -p -- "$bundle"
    chmod 0700 "$bundle"
    [[ -f "$bundle/$site.key" ]] || new_key "$bundle/$site.key"
    if [[ ! -f "$bundle/$site.crt" ]]; then
        sign "$site" "$bundle/$site.key" "$bundle/$site.crt" "extendedKeyUsage = clientAuth"
        note "created certificate $bundle/$site.crt (valid $days days)"
    fi
    if ! cmp -s -- "$dir/ca.crt" "$bundle/ca.crt"; then
        cp -- "$dir/ca.crt" "$bundle/ca.crt"
        chmod 0644 "$bundle/ca.crt"
    fi
    if [[ ! -f "$bundle/password" ]]; then
        openssl rand -hex 24 >"$bundle/password"
        chmod 0600 "$bundle/password"
    fi
    if ! passwd_has "$site"; then
        # -b puts the password on mosquitto_passwd's command line for an instant; only root on this host sees it.
        mosquitto_passwd -b "$dir/passwd" "$site" "$(<"$bundle/password")"
        note "added $site to $dir/passwd; its box needs everything in $bundle/"
    fi
done
broker_file "$dir/passwd"
