#!/bin/sh
# The carrier's three parts on the container's own address (no IPv6 in the lab): Kamailio on
# 5060 (the trunk's far end), sipp answering on 5062, the remote fax machine on 5070.
set -eu
address=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
proxies=${PBX_CARRIER_PROXIES:?the site proxies (host:port,host:port)}
first=${proxies%%,*}
second=${proxies#*,}
sed -e "s/__ADDRESS__/${address}/g" -e "s/__PROXY1__/${first}/g" -e "s/__PROXY2__/${second}/g" \
  /etc/carrier/kamailio.cfg > /tmp/carrier-kamailio.cfg
mkdir -p /tmp/kamailio-run /var/lib/faxpeer
echo "carrier: trunk on ${address}:5060, sipp on :5062, fax machine on :5070, PSTN side ${proxies}"
sipp -sn uas -i "$address" -p 5062 -rtp_echo -nostdin -trace_err -error_file /dev/stderr &
PBX_FAXPEER_ADDRESS="$address" python3 /opt/pbx/faxpeer.py serve &
exec kamailio -DD -E -Y /tmp/kamailio-run -f /tmp/carrier-kamailio.cfg
