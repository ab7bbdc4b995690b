#!/bin/sh
# The example application. It stands in for a real service: Kubernetes
# starts it only after the initContainer has applied the migrations it
# ships, so it may rely on the schema being there.
set -eu
echo "app ${APP_VERSION:-unknown}: started"
trap 'echo "app: stopping"; exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
