#!/bin/sh
# certbot deploy hook on the TURN machine: /etc/letsencrypt/renewal-hooks/deploy/coturn.sh (mode 0755).
# certbot runs it after every issue or renewal with RENEWED_LINEAGE=/etc/letsencrypt/live/<name>. coturn runs
# as user turnserver, who cannot read certbot's root-only keys, so it gets copies it owns; SIGUSR2 makes coturn
# reload its certificate without dropping the relays in use.
set -eu
dest=/etc/coturn/tls
install -d -o root -g turnserver -m 0750 "$dest"
install -o root -g turnserver -m 0644 "$RENEWED_LINEAGE/fullchain.pem" "$dest/fullchain.pem"
install -o root -g turnserver -m 0640 "$RENEWED_LINEAGE/privkey.pem" "$dest/privkey.pem"
if systemctl is-active --quiet coturn; then
  systemctl kill --signal=SIGUSR2 --kill-whom=main coturn
fi
