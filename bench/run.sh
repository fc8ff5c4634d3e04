#!/usr/bin/env bash
# make bench: our broker (store on and store off) beside Debian's mosquitto on
# the same loadgen scenarios, one fresh broker per run, alternating targets.
# Writes bench/results.md. Bounded: about 5 minutes with the defaults.
#
# Knobs (environment):
#   BENCH_DURATION  publishing time per throughput run (default 3s)
#   BENCH_ROUNDS    rounds over all scenarios and targets; each figure is the median (default 3)
#   BENCH_CONNS     connections for the idle-memory and connect-rate run (default 10000)
#   BENCH_PORT      MQTT port on 127.0.0.1 (default 18883; ops listener on the next port)
#   BENCH_TARGETS   which targets to run (default "ours-store ours-nostore mosquitto")
#   BENCH_SCENARIOS which scenarios (default "qos0 qos1 fanin cpu conns connauth")
set -euo pipefail
cd "$(dirname "$0")/.."

TMP=bench/tmp
OUT=bench/results.md
DUR=${BENCH_DURATION:-3s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-10000}
PORT=${BENCH_PORT:-18883}
OPS=$((PORT + 1))
TARGETS=${BENCH_TARGETS:-"ours-store ours-nostore mosquitto"}
SCENARIOS=${BENCH_SCENARIOS:-"qos0 qos1 fanin cpu conns connauth"}
TOKPORT=$((PORT + 2))

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

install_pkg() { # command package
	command -v "$1" >/dev/null 2>&1 && return 0
	[ -x "/usr/sbin/$1" ] && return 0
	[ "$(id -u)" = 0 ] || die "$1 is missing: install the Debian package $2 (as root: apt-get install -y $2)"
	log "installing $2"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
install_pkg jq jq
install_pkg mosquitto mosquitto
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

rm -rf "$TMP"
mkdir -p "$TMP"
log "building cmd/broker and cmd/loadgen"
go build -o "$TMP/broker" ./cmd/broker
go build -o "$TMP/loadgen" ./cmd/loadgen
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open-file limit $(ulimit -n); targets: $TARGETS; scenarios: $SCENARIOS"

cat >"$TMP/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
persistence false
CONF

# Token auth for our broker's connect-rate run: a signing key, one API key
# for identity "bench" and a policy that lets it connect as bench-*.
"$TMP/broker" keys generate --dir "$TMP" --kid bench >/dev/null
"$TMP/broker" keys apikey --identity bench >"$TMP/apikey.out"
API_KEY=$(awk '/api key/{print $NF}' "$TMP/apikey.out")
printf 'keys:\n  - identity: bench\n    sha256: %s\n' "$(awk '/sha256/{print $2}' "$TMP/apikey.out")" >"$TMP/api_keys.yaml"
cat >"$TMP/auth.yaml" <<CONF
auth:
  keys:
    - {id: bench, private_key_file: $TMP/bench.key}
  active_key: bench
  api_keys_file: $TMP/api_keys.yaml
  policies:
    default: {client_id: "%u-*", publish: ["bench/#"], subscribe: ["bench/#"]}
  rate_limits:
    per_identity: {rate: 1000000, burst: 1000000}
    per_address: {rate: 1000000, burst: 1000000}
CONF

PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

start_target() { # target scenario
	local auth=()
	if [ "$2" = connauth ]; then auth=(--config "$TMP/auth.yaml" --token-api-addr "127.0.0.1:$TOKPORT"); fi
	case $1 in
	ours-store)
		rm -rf "$TMP/data"
		"$TMP/broker" "${auth[@]}" --mqtt-addr "127.0.0.1:$PORT" --ws-addr "" --ops-addr "127.0.0.1:$OPS" \
			--data-dir "$TMP/data" --log-level warn >>"$TMP/$1.log" 2>&1 &
		;;
	ours-nostore)
		"$TMP/broker" "${auth[@]}" --mqtt-addr "127.0.0.1:$PORT" --ws-addr "" --ops-addr "127.0.0.1:$OPS" \
			--data-dir "" --log-level warn >>"$TMP/$1.log" 2>&1 &
		;;
	mosquitto)
		"$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/$1.log" 2>&1 &
		;;
	*) die "unknown target $1" ;;
	esac
	PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		kill -0 "$PID" 2>/dev/null || die "$1 exited at start: $(tail -5 "$TMP/$1.log")"
		sleep 0.1
	done
	die "$1 did not listen on 127.0.0.1:$PORT within 10 s"
}

stop_target() {
	kill "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
}

run_scenario() { # target scenario round
	local lg=("$TMP/loadgen" --broker "127.0.0.1:$PORT" --quiet --broker-pid "$PID" --json "$TMP/$1-$2-$3.json" --client-prefix "bench-$2-")
	case $2 in
	qos0) "${lg[@]}" --qos 0 --size 64 --duration "$DUR" pubsub ;;
	qos1) "${lg[@]}" --qos 1 --size 64 --duration "$DUR" pubsub ;;
	fanin) "${lg[@]}" --qos 1 --size 64 --pubs 100 --subs 1 --pub-rate 300 --duration "$DUR" pubsub ;;
	cpu) "${lg[@]}" --qos 1 --size 64 --pub-rate 10000 --duration "$DUR" pubsub ;;
	conns) "${lg[@]}" --conns "$CONNS" --rate 0 --parallel 32 --hold 2s --keepalive 60s conn ;;
	connauth)
		"${lg[@]}" --conns "$CONNS" --rate 0 --parallel 32 --hold 0s --keepalive 60s \
			--token-url "http://127.0.0.1:$TOKPORT/v1/token" --token-key "$API_KEY" --client-prefix bench- conn
		;;
	esac
}

for round in $(seq "$ROUNDS"); do
	for scen in $SCENARIOS; do
		for target in $TARGETS; do
			if [ "$scen" = connauth ] && [ "$target" = mosquitto ]; then continue; fi # no token auth there
			log "round $round/$ROUNDS: $scen on $target"
			start_target "$target" "$scen"
			if ! run_scenario "$target" "$scen" "$round" 2>>"$TMP/loadgen.log"; then
				log "$scen on $target failed (see $TMP/loadgen.log)"
			fi
			stop_target
		done
	done
done

# num TARGET SCENARIO JQ: the median over the rounds of a number from the
# results, or "" when no run has it.
num() {
	local files=("$TMP/$1-$2-"*.json)
	[ -f "${files[0]}" ] || return 0
	jq -rs "[.[] | ($3) // empty | select(type == \"number\")] | sort | if length == 0 then empty else .[(length - 1) / 2 | floor] end" "${files[@]}" 2>/dev/null || true
}
fmt() { [ -n "$1" ] && printf "%.${2}f" "$1" || printf 'n/a'; }
ratio() { if [ -n "$1" ] && [ -n "$2" ] && awk "BEGIN{exit !($2 > 0)}"; then awk "BEGIN{printf \"%.2fx\", $1 / $2}"; else printf 'n/a'; fi; }

row() { # label scenario jq-expr decimals [noratio [mosquitto-scenario]]
	local vals=() t v
	for t in ours-store ours-nostore mosquitto; do
		if [ "$t" = mosquitto ] && [ -n "${6:-}" ]; then v=$(num "$t" "$6" "$3"); else v=$(num "$t" "$2" "$3"); fi
		vals+=("$v")
	done
	local r1 r2
	r1=$(ratio "${vals[0]}" "${vals[2]}")
	r2=$(ratio "${vals[1]}" "${vals[2]}")
	if [ "${5:-}" = noratio ]; then r1=-; r2=-; fi
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" \
		"$(fmt "${vals[0]}" "$4")" "$(fmt "${vals[1]}" "$4")" "$(fmt "${vals[2]}" "$4")" "$r1" "$r2"
}

LOSS='if .messages.expected > 0 then 100 * .messages.lost / .messages.expected else empty end'
{
	echo "# Benchmark: courier broker vs mosquitto"
	echo
	echo "Produced by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GB", $2/1e6}' /proc/meminfo), $(uname -sr); $(go version | awk '{print $3}'); $("$MOSQUITTO" -h 2>/dev/null | head -1)."
	echo "mosquitto: \`set_tcp_nodelay true\`, \`persistence false\`, otherwise defaults. Ours: store on (\`--data-dir\`) and off (\`--data-dir \"\"\`)."
	echo "Load from cmd/loadgen (MQTT 5, 64-byte payloads) on the same machine: broker and load generator share the $(nproc) cores,"
	echo "so absolute numbers are lower than on a dedicated host; the ratios are the point. One fresh broker per run,"
	echo "targets alternating within each of $ROUNDS rounds; each figure is the median over the rounds ($DUR of publishing per throughput run)."
	echo
	echo "| metric | ours, store on | ours, store off | mosquitto | store on / mosquitto | store off / mosquitto |"
	echo "|---|---|---|---|---|---|"
	row "1->1 QoS 0 throughput, msg/s (higher is better)" qos0 '.messages.delivered_rate' 0
	row "1->1 QoS 0 loss, % (unthrottled)" qos0 "$LOSS" 2 noratio
	row "1->1 QoS 1 throughput, msg/s (higher is better)" qos1 '.messages.delivered_rate' 0
	row "1->1 QoS 1 loss, %" qos1 "$LOSS" 2 noratio
	row "100->1 fan-in at 30k msg/s QoS 1: delivered msg/s" fanin '.messages.delivered_rate' 0
	row "100->1 fan-in at 30k msg/s QoS 1: loss, %" fanin "$LOSS" 2 noratio
	row "100->1 fan-in at 30k msg/s QoS 1: end-to-end p99, ms" fanin '.end_to_end_latency.p99_ms' 2
	row "broker CPU per message at 10k msg/s (1->1 QoS 1), us (lower is better)" cpu '.broker_process.cpu_per_message_us' 1
	row "10k msg/s run: end-to-end p99, ms" cpu '.end_to_end_latency.p99_ms' 2
	row "idle memory per connection at $CONNS connections, KB (lower is better)" conns '.broker_process.rss_per_connection_bytes / 1000' 2
	row "connections established" conns '.conns.connected' 0 noratio
	row "connect rate, anonymous, connects/s (higher is better)" conns '.conns.connect_rate' 0
	row "connect latency p99 (dial to CONNACK), anonymous, ms" conns '.connect_service_latency.p99_ms' 2
	row "connect rate, ours with token auth (mosquitto anonymous), connects/s" connauth '.conns.connect_rate' 0 ratio conns
	row "connect latency p99 with token auth (mosquitto anonymous), ms" connauth '.connect_service_latency.p99_ms' 2 ratio conns
	echo
	echo "Notes"
	echo
	echo "- Throughput is distinct messages delivered per second, from the first publish to the last delivery; unthrottled QoS 0 publishers can outrun a broker, which then drops (loss column)."
	echo "- CPU per message is the broker's utime+stime (from /proc/<pid>/stat) over the run divided by messages published; each message is read once and written once."
	echo "- Idle memory is the broker's RSS after all connections are up minus its RSS before, per connection."
	echo "- Connect rate: $CONNS connects, 32 handshakes in flight (mosquitto slows down past its listen backlog of 100 pending connections)."
	echo "  With token auth every CONNECT carries an EdDSA-signed broker token that our broker verifies; the tokens come from our token API and are fetched before the ramp (--token-prefetch), so the rate is the broker's."
	if [[ " $TARGETS " == *" ours-store "* ]] && [ -z "$(ls -A "$TMP/data" 2>/dev/null)" ]; then
		echo "- This build wrote nothing to --data-dir: its store is not wired yet, so \"store on\" and \"store off\" ran the same code and differ only by noise."
	fi
	stopped=$(for f in "$TMP"/*-*.json; do jq -r --arg f "$(basename "$f" .json)" 'select(.stopped != null and .stopped != "") | "- \($f): \(.stopped)"' "$f" 2>/dev/null; done)
	if [ -n "$stopped" ]; then
		echo "- Runs that stopped early:"
		printf "%s\n" "$stopped" | while IFS= read -r line; do echo "  $line"; done
	fi
	echo
	echo "Reproduce: \`make bench\` (needs Go and root for apt-get, or mosquitto and jq installed). Raw results: bench/tmp/*.json."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
