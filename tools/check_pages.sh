#!/usr/bin/env bash
# Renders every committed page under docs/ (the results report, the analyses' pages) in headless
# Chromium and reads back each page's self-check: no script errors or blocked requests, and every
# chart's declared series drawn with an extent. Exits non-zero on the first page that fails.
#
#   bash tools/check_pages.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[ -n "$browser" ] || { echo "no Chromium on PATH (apt-get install -y --no-install-recommends chromium)" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
status=0
while IFS= read -r page; do
  check="$(timeout 90 "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$profile" --dump-dom "file://$page" 2>/dev/null \
    | grep -o '<pre id="report-check"[^>]*>[^<]*' | sed 's/.*>//; s/&quot;/"/g' || true)"
  if python3 - "$check" <<'PY'
import json, sys
try:
    c = json.loads(sys.argv[1])
except ValueError:
    sys.exit(1)
bad = [name for name, v in c["charts"].items() if v["rendered"] != v["declared"] or v["series"] != v["declared"]]
sys.exit(1 if c["errors"] or bad or not c["charts"] else 0)
PY
  then echo "ok    ${page#$root/}: $check"
  else echo "FAIL  ${page#$root/}: ${check:-no self-check output}"; status=1
  fi
done < <(find "$root/docs" -name '*.html' | sort)
exit $status
