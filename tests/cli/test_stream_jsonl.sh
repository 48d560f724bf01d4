#!/usr/bin/env bash
# drst produce/consume through JSON Lines files: records match pandas' view
# of the CSV, one sentinel per partition, malformed lines are dead-lettered
# with their reason, and usage errors exit 2.
set -u
DRST=${DRST_BIN:-drst}
DATA=${DRST_DATA:-../shared/data}
PY=${DRST_PYTHON:-/usr/bin/python3}
csv=$DATA/drst/combined.csv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# usage errors and bad input
"$DRST" produce --topic t 2>/dev/null; [ $? = 2 ] || fail "produce without --data must exit 2"
"$DRST" consume --topic t 2>/dev/null; [ $? = 2 ] || fail "consume without a source must exit 2"
"$DRST" broker --port 70000 2>/dev/null; [ $? = 2 ] || fail "broker --port 70000 (out of range) must exit 2"
"$DRST" produce --data "$tmp/missing.csv" --out "$tmp/x" 2>"$tmp/err"; [ $? = 1 ] ||
  fail "missing CSV must exit 1"
grep -q missing.csv "$tmp/err" || fail "error does not name the file: $(cat "$tmp/err")"
"$DRST" produce --help | grep -q -- "--partition-mode" || fail "produce --help"
"$DRST" broker --help | grep -qi "development and tests" || fail "broker --help must say dev/test"

# malformed lines go to the dead-letter file, the rest is printed
printf '%s\n' '{"seq":1,"features":{"a":1}}' 'not json' '{"seq":2,"features":{"a":"x"}}' \
  '{"eos":true,"partition":0}' > "$tmp/mixed.jsonl"
"$DRST" consume --in "$tmp/mixed.jsonl" --dlq "$tmp/dlq.jsonl" > "$tmp/out.jsonl" 2>"$tmp/err" ||
  fail "consume --in failed: $(cat "$tmp/err")"
[ "$(wc -l < "$tmp/out.jsonl")" = 2 ] || fail "expected 2 printed lines: $(cat "$tmp/out.jsonl")"
"$PY" - "$tmp/dlq.jsonl" <<'EOF' || fail "dead letters"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1])]
assert [x["payload"] for x in d] == ["not json", '{"seq":2,"features":{"a":"x"}}'], d
assert all(x["reason"] for x in d) and d[0]["source"] == "drst/0/1", d
EOF

if [ ! -f "$csv" ]; then
  echo "SKIP: no DRST data in $DATA"; exit 77
fi
"$DRST" produce --data "$csv:tail=25" --out "$tmp/p.jsonl" --partitions 2 --quiet ||
  fail "produce --out failed"
"$DRST" consume --in "$tmp/p.jsonl" --no-eos > "$tmp/c.jsonl" 2>/dev/null || fail "consume"
"$PY" - "$csv" "$tmp/p.jsonl" "$tmp/c.jsonl" <<'EOF' || fail "records differ from pandas"
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1], float_precision="round_trip").tail(25)
feats = [c for c in df.columns if not c.startswith("Unnamed")
         and c not in ("input_rate", "output_rate", "latency")]
lines = [json.loads(l) for l in open(sys.argv[2])]
recs, eos = lines[:25], lines[25:]
assert eos == [{"eos": True, "partition": 0}, {"eos": True, "partition": 1}], eos
for i, r in enumerate(recs):
    row = df.iloc[i]
    assert r["seq"] == i
    assert list(r["features"]) == feats, "schema order"
    assert all(r["features"][f] == float(row[f]) for f in feats), i
    assert r["label"] == float(row["output_rate"])
    assert r["ts"] == r["send_ts"] > 1.6e9
assert [json.loads(l) for l in open(sys.argv[3])] == recs
print("jsonl: 25 records match pandas, 2 sentinels, dead letters ok")
EOF
