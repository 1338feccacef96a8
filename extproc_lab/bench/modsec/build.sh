#!/bin/sh
# Build extproc_lab/bench/modsec/modsec_eval against the system libmodsecurity (Debian: libmodsecurity-dev).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
${CC:-gcc} -O2 -Wall -Wextra -o "$here/modsec_eval" "$here/modsec_eval.c" -lmodsecurity
echo "built $here/modsec_eval"
