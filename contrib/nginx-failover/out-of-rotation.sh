#!/bin/sh
# heartbeat demotion hook: take this node out of the load balancer's
# rotation by creating the flag file nginx-lb-health.conf tests.
#
# Usage: out-of-rotation.sh [FLAG]   (default /var/lib/heartbeat/maintenance)
#
# The balancer sees 503 on /lb-health and drains the node: requests in
# flight finish, new ones go elsewhere. Running it again changes nothing
# but the reason written in the file; heartbeat retries a failed hook at
# every round until it succeeds.
set -eu

flag=${1:-/var/lib/heartbeat/maintenance}
dir=$(dirname "$flag")

# Write the reason next to the flag, then move it into place in one step,
# so nginx never sees a half-written file.
tmp=$(mktemp "$dir/.maintenance.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
    echo "out of rotation since $(date '+%Y-%m-%d %H:%M:%S')"
    echo "group ${HEARTBEAT_ACTION:-?}: ${HEARTBEAT_PREVIOUS_STATE:-?} -> ${HEARTBEAT_STATE:-?}"
    echo "failed checks: ${HEARTBEAT_FAILED_CHECKS:-none}"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$flag"

# Captured and logged by heartbeat.
echo "out of rotation (failed checks: ${HEARTBEAT_FAILED_CHECKS:-none})"
