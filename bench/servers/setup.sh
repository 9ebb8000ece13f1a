#!/bin/bash
# Other IMAP servers on this machine, for bench/servers/check.py (issue #12: "the four servers' runs").
#
#   bash bench/servers/setup.sh          install what is missing, (re)write every config, (re)start all
#   bash bench/servers/setup.sh start    start whatever is not running (configs as they are)
#   bash bench/servers/setup.sh stop     stop every server this script started (installs stay)
#   bash bench/servers/setup.sh status   which ones answer
#
# Needs root and Debian 12 (bookworm). Idempotent: run it as often as you like.
#
#   port   server                                   namespace as a client sees it
#   10143  Cyrus IMAP 3.6, altnamespace: yes        INBOX, Archive, Projects/Sub ("/", the 3.x default)
#   10144  Cyrus IMAP 3.6, altnamespace: no         INBOX, INBOX.Archive, INBOX.Projects.Sub (".", classic)
#   10145  Courier-IMAP 5                           INBOX, INBOX.Archive (".")
#   10146  GNU Mailutils imap4d 3.15                INBOX, Archive ("/")
#
# Every one: user "imapbench", password "secret", LOGIN in clear text on loopback, STARTTLS offered
# with the self-signed certificate $BASE/tls/cert.pem (CA:TRUE, SAN 127.0.0.1: pass it as the CA file).
#
# Why the packages are unpacked rather than installed: Debian's cyrus-imapd and courier-imap declare
# "Conflicts: imap-server", and dovecot-imapd (the test suite's server) provides imap-server; they also
# conflict with each other. So their libraries and the non-conflicting packages (courier-base and its
# authdaemon, mailutils-imap4d, SASL) are installed with apt, and cyrus-common, cyrus-imapd and
# courier-imap are fetched with `apt-get download` and unpacked with `dpkg-deb -x` under $PKG. Nothing
# of them lands in /usr or /etc, and no init script or MTA is installed (cyrus-common would pull exim).
set -euo pipefail

BASE=/var/lib/imap2api-servers   # configs, mail stores, pid files, logs
PKG=/opt/imap2api-servers        # the unpacked packages
MAIL_USER=imapbench
MAIL_PASSWORD=secret
CYRUS_ALT_PORT=10143
CYRUS_INBOX_PORT=10144
COURIER_PORT=10145
IMAP4D_PORT=10146
CYRUS_VERSION=3.6.1-4+deb12u5     # what bookworm has; "apt-cache policy cyrus-imapd" if this changes
COURIER_VERSION=5.0.13+1.0.16-3+b6

APT_PACKAGES=(
  # Courier: couriertcpd, courierlogger, couriertls (courier-base); authdaemond checks passwords
  # (its Debian default module is authpam, so the unix user's password works).
  courier-base courier-authdaemon courier-authlib-userdb gamin libgamin0
  mailutils-imap4d
  # Cyrus: SASL's sasldb plugin checks passwords (no saslauthd), saslpasswd2 sets them.
  sasl2-bin libsasl2-modules
  # cyrus-common's shared-library dependencies (its Depends: without the MTA and the init scripts)
  libclamav12 libical3 libicu72 libjansson4 libxapian30 libzephyr4 libpq5 libsqlite3-0 libwrap0
  libldap-2.5-0 libxml2 libpcre3 libkrb5-3
  openssl
)

log() { echo "setup.sh: $*" >&2; }

need_root() { [ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }; }

install_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
      || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
  fi
  local stamp="$PKG/.unpacked-$CYRUS_VERSION-$COURIER_VERSION"
  if [ ! -e "$stamp" ]; then
    log "unpacking cyrus-common, cyrus-imapd, courier-imap into $PKG"
    local debs
    debs=$(mktemp -d)
    chmod 755 "$debs"  # apt's _apt user downloads into it
    (cd "$debs" && apt-get download "cyrus-common=$CYRUS_VERSION" "cyrus-imapd=$CYRUS_VERSION" \
      "courier-imap=$COURIER_VERSION" >&2)
    rm -rf "$PKG"
    mkdir -p "$PKG"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$PKG"; done
    rm -rf "$debs"
    touch "$stamp"
  fi
}

make_user() {
  # One unix user for Courier and imap4d (both check passwords through PAM); Cyrus has its own (sasldb).
  mkdir -p "$BASE/home"
  if ! id "$MAIL_USER" >/dev/null 2>&1; then
    useradd --system --home-dir "$BASE/home/$MAIL_USER" --create-home --shell /usr/sbin/nologin "$MAIL_USER"
  fi
  echo "$MAIL_USER:$MAIL_PASSWORD" | chpasswd
  # Cyrus's master refuses to run as root: it switches to the compiled-in user "cyrus" (group mail).
  id cyrus >/dev/null 2>&1 || useradd --system --gid mail --home-dir "$BASE/cyrus" --shell /usr/sbin/nologin cyrus
}

make_certificate() {
  mkdir -p "$BASE/tls"
  if [ ! -s "$BASE/tls/cert.pem" ]; then
    # Self-signed, CA:TRUE (openssl's default for -x509), so a client can use it as its own trust anchor.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$BASE/tls/key.pem" -out "$BASE/tls/cert.pem" 2>/dev/null
  fi
  chmod 600 "$BASE/tls/key.pem"
  cat "$BASE/tls/key.pem" "$BASE/tls/cert.pem" > "$BASE/tls/courier.pem"  # couriertls: key and cert in one
  # couriertls runs as group courier (like the package's /etc/courier/imapd.pem, root:courier 0640).
  chown root:courier "$BASE/tls/courier.pem"
  chmod 640 "$BASE/tls/courier.pem"
  # Cyrus's imapd runs as cyrus and reads its key after the switch: its own copy.
  install -m 600 -o cyrus -g mail "$BASE/tls/key.pem" "$BASE/tls/cyrus-key.pem"
}

# --- Cyrus ----------------------------------------------------------------------------------------

cyrus_conf() {  # $1: yes|no (altnamespace and unixhierarchysep alike: the two ways Cyrus is deployed)
  cat <<EOF
# Written by bench/servers/setup.sh; rewritten on every run.
configdirectory: $BASE/cyrus/lib
partition-default: $BASE/cyrus/spool
servername: localhost
# altnamespace: yes shows other folders beside INBOX ("Archive"), no shows them under it
# ("INBOX.Archive"); unixhierarchysep switches the separator between "/" and ".".
altnamespace: $1
unixhierarchysep: $1
# Passwords from our own sasldb (saslpasswd2 -f), not saslauthd or PAM; LOGIN allowed in clear text.
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $BASE/cyrus/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
# A user's INBOX is created at first login (no cyradm step); 0 = no quota.
autocreate_quota: 0
# Clients may create any folder, and special-use flags on CREATE (RFC 6154) are accepted.
specialuse_extra: \\Archive
tls_server_cert: $BASE/tls/cert.pem
tls_server_key: $BASE/tls/cyrus-key.pem
# A deleted folder is gone at once (3.x keeps it as DELETED.* by default): resets stay simple.
delete_mode: immediate
# No sieve, no conversations, no search indexing: nothing the sync needs.
sievedir: $BASE/cyrus/sieve
syslog_prefix: cyrus-bench
EOF
}

configure_cyrus() {
  mkdir -p "$BASE/cyrus"/{lib,spool,sieve,conf,run}
  for sub in db socket proc log msg ptclient quota user lock sync; do mkdir -p "$BASE/cyrus/lib/$sub"; done
  cyrus_conf yes > "$BASE/cyrus/conf/imapd-alt.conf"
  cyrus_conf no > "$BASE/cyrus/conf/imapd-inbox.conf"
  # One master, two imapd services on one mail store: a namespace is only how imapd names folders.
  cat > "$BASE/cyrus/conf/cyrus.conf" <<EOF
# Written by bench/servers/setup.sh.
START {
  recover cmd="$PKG/usr/lib/cyrus/bin/ctl_cyrusdb -C $BASE/cyrus/conf/imapd-alt.conf -r"
}
SERVICES {
  imapalt   cmd="$PKG/usr/lib/cyrus/bin/imapd -C $BASE/cyrus/conf/imapd-alt.conf" listen="127.0.0.1:$CYRUS_ALT_PORT" prefork=0
  imapinbox cmd="$PKG/usr/lib/cyrus/bin/imapd -C $BASE/cyrus/conf/imapd-inbox.conf" listen="127.0.0.1:$CYRUS_INBOX_PORT" prefork=0
}
EVENTS {
  checkpoint cmd="$PKG/usr/lib/cyrus/bin/ctl_cyrusdb -C $BASE/cyrus/conf/imapd-alt.conf -c" period=30
}
EOF
  echo "$MAIL_PASSWORD" | saslpasswd2 -p -c -f "$BASE/cyrus/sasldb2" -u localhost "$MAIL_USER"
  # Logged in without a realm, the user is looked up under the servername's realm too.
  echo "$MAIL_PASSWORD" | saslpasswd2 -p -c -f "$BASE/cyrus/sasldb2" "$MAIL_USER"
  chown -R cyrus:mail "$BASE/cyrus"
  chmod 640 "$BASE/cyrus/sasldb2"
}

start_cyrus() {
  running "$BASE/cyrus/run/master.pid" && return 0
  # -d: daemonize; -p: pid file. LD_LIBRARY_PATH: Cyrus's own libraries live in the unpacked tree.
  LD_LIBRARY_PATH="$PKG/usr/lib/x86_64-linux-gnu" "$PKG/usr/lib/cyrus/bin/master" -d \
    -C "$BASE/cyrus/conf/imapd-alt.conf" -M "$BASE/cyrus/conf/cyrus.conf" -p "$BASE/cyrus/run/master.pid"
}

# --- Courier --------------------------------------------------------------------------------------

configure_courier() {
  mkdir -p "$BASE/courier"
  local home="$BASE/home/$MAIL_USER"
  [ -d "$home/Maildir" ] || su -s /bin/sh "$MAIL_USER" -c "maildirmake '$home/Maildir'"
  # The package's /etc/courier/imapd settings, as the environment of couriertcpd and imapd (its
  # init script does the same): Courier's own capabilities (no CONDSTORE, MOVE or ENABLE; UIDNEXT
  # missing from SELECT), STARTTLS through couriertls with our certificate.
  cat > "$BASE/courier/imapd.env" <<EOF
# Written by bench/servers/setup.sh.
IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
IMAP_CAPABILITY_TLS="\$IMAP_CAPABILITY AUTH=PLAIN"
IMAP_KEYWORDS=1
IMAP_ACL=1
IMAP_PROXY=0
IMAP_IDLE_TIMEOUT=60
IMAP_MAILBOX_SANITY_CHECK=1
IMAP_DISABLETHREADSORT=0
IMAP_CHECK_ALL_FOLDERS=0
IMAP_OBSOLETE_CLIENT=0
IMAP_UMASK=022
IMAP_ULIMITD=131072
IMAP_USELOCKS=1
IMAP_ENHANCEDIDLE=0
IMAP_TRASHFOLDERNAME=Trash
# Courier's default empties Trash of mail older than 7 days at logout: keep what the checks put there.
IMAP_EMPTYTRASH=
IMAP_MOVE_EXPUNGE_TO_TRASH=0
HEADERFROM=X-IMAP-Sender
MAILDIRPATH=Maildir
IMAP_STARTTLS=YES
IMAP_TLS_REQUIRED=0
COURIERTLS=/usr/bin/couriertls
TLS_CERTFILE=$BASE/tls/courier.pem
TLS_DHPARAMS=/etc/courier/dhparams.pem
TLS_TRUSTCERTS=/etc/ssl/certs/ca-certificates.crt
TLS_VERIFYPEER=NONE
EOF
}

start_courier() {
  # authdaemond (installed from the package, default config: authpam) checks the password.
  running /run/courier/authdaemon/pid || /usr/sbin/authdaemond start
  running "$BASE/courier/imapd.pid" && return 0
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "set -a; . '$BASE/courier/imapd.env'; \
    exec /usr/sbin/courierlogger -pid='$BASE/courier/imapd.pid' -start -name=courier-bench \
      /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 -maxperip=40 -nodnslookup -noidentlookup \
      $COURIER_PORT '$PKG/usr/lib/courier/courier/imaplogin' '$PKG/usr/bin/imapd' Maildir"
}

# --- GNU Mailutils imap4d -------------------------------------------------------------------------

configure_imap4d() {
  mkdir -p "$BASE/imap4d"
  local home="$BASE/home/$MAIL_USER"
  mkdir -p "$home/imap4d"
  chown "$MAIL_USER:" "$home/imap4d"
  cat > "$BASE/imap4d/imap4d.conf" <<EOF
# Written by bench/servers/setup.sh.
mode daemon;
pidfile $BASE/imap4d/imap4d.pid;
# INBOX and every other folder are Maildirs under ~/imap4d. Not mbox, the package's default: an mbox
# file cannot have sub-folders (\NoInferiors), and the checks need a hierarchy.
# Beware: imap4d 3.15 gives a Maildir a new UIDVALIDITY at every read-only EXAMINE while mail sits in
# new/ (APPENDed or delivered, not yet SELECTed read-write); check.py SELECTs after each change.
mailbox {
  mailbox-pattern "maildir://$home/imap4d/INBOX";
};
namespace personal {
  prefix "" {
    directory "$home/imap4d";
    delimiter "/";
    mailbox-type "maildir";
  };
};
logging { syslog no; };
server 127.0.0.1:$IMAP4D_PORT {
  # STARTTLS offered, not required (LOGIN in clear text works on loopback).
  tls-mode ondemand;
};
tls {
  ssl-certificate-file "$BASE/tls/cert.pem";
  ssl-key-file "$BASE/tls/key.pem";
};
EOF
}

start_imap4d() {
  running "$BASE/imap4d/imap4d.pid" && return 0
  imap4d --config-file="$BASE/imap4d/imap4d.conf" >>"$BASE/imap4d/imap4d.log" 2>&1
}

# --- common ---------------------------------------------------------------------------------------

running() { [ -s "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

stop_pidfile() {  # $1: pid file, $2: name
  if running "$1"; then
    kill "$(head -n1 "$1")" || true
    for _ in $(seq 50); do running "$1" || break; sleep 0.1; done
    log "stopped $2"
  fi
  rm -f "$1"
}

stop_all() {
  stop_pidfile "$BASE/cyrus/run/master.pid" cyrus
  stop_pidfile "$BASE/courier/imapd.pid" courier  # courierlogger: its TERM stops couriertcpd too
  if running /run/courier/authdaemon/pid; then
    # "stop" returns before authdaemond is gone, and a "start" meanwhile quietly does nothing.
    local pid
    pid=$(head -n1 /run/courier/authdaemon/pid)
    /usr/sbin/authdaemond stop || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped authdaemond"
  fi
  stop_pidfile "$BASE/imap4d/imap4d.pid" imap4d
}

wait_for() {  # $1: port, $2: name
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then log "$2 listens on 127.0.0.1:$1"; return 0; fi
    sleep 0.1
  done
  log "$2 does not answer on 127.0.0.1:$1"; return 1
}

start_all() {
  start_cyrus
  start_courier
  start_imap4d
  local ok=0
  wait_for "$CYRUS_ALT_PORT" "cyrus (altnamespace)" || ok=1
  wait_for "$CYRUS_INBOX_PORT" "cyrus (INBOX. namespace)" || ok=1
  wait_for "$COURIER_PORT" courier || ok=1
  wait_for "$IMAP4D_PORT" imap4d || ok=1
  return $ok
}

status() {
  for entry in "$CYRUS_ALT_PORT cyrus-alt" "$CYRUS_INBOX_PORT cyrus-inbox" "$COURIER_PORT courier" "$IMAP4D_PORT imap4d"; do
    set -- $entry
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then echo "$2 127.0.0.1:$1 up"; else echo "$2 127.0.0.1:$1 down"; fi
  done
}

case "${1:-setup}" in
  setup)
    need_root
    install_packages
    make_user
    make_certificate
    stop_all  # configs are rewritten: restart on them
    configure_cyrus
    configure_courier
    configure_imap4d
    start_all
    ;;
  start) need_root; start_all ;;
  stop) need_root; stop_all ;;
  status) status ;;
  *) echo "usage: $0 [setup|start|stop|status]" >&2; exit 2 ;;
esac
