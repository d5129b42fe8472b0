#!/bin/sh
# heartbeat promotion hook: put this node back into the load balancer's
# rotation by removing the flag file nginx-lb-health.conf tests.
#
# Usage: into-rotation.sh [FLAG]   (default /var/lib/heartbeat/maintenance)
#
# Removing a flag that is not there is fine: at start-up every group runs
# its promotion or demotion once, whatever the state before.
set -eu

flag=${1:-/var/lib/heartbeat/maintenance}
rm -f "$flag"

# Captured and logged by heartbeat.
echo "in rotation"
