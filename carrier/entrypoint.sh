#!/bin/sh
# Bind sipp's UAS to the container's own address (no IPv6 in the lab; sipp needs an explicit -i).
set -eu
address=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
echo "carrier: answering on ${address}:5060 (UDP), echoing RTP"
exec sipp -sn uas -i "$address" -p 5060 -rtp_echo -nostdin -trace_err -error_file /dev/stderr
