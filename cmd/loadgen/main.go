// Command loadgen drives an MQTT broker (ours or any other) with connection
// soaks, publish/subscribe throughput and latency runs, and reconnect storms.
//
//	loadgen --broker tcp://127.0.0.1:1883 --pubs 1 --subs 1 --qos 1 --duration 10s pubsub
//	loadgen --conns 10000 --rate 2000 --hold 1m --source-ips 127.0.0.1-127.0.0.4 conn
//	loadgen --conns 5000 --outage-cmd 'systemctl restart mosquitto' storm
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/report"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr *os.File) int {
	cfg := load.DefaultConfig()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadgen [flags] conn|pubsub|storm\n\n")
		fs.PrintDefaults()
	}
	version := fs.Int("mqtt", 5, "MQTT version: 5, or 4 for 3.1.1")
	insecure := fs.Bool("tls-insecure", false, "skip TLS certificate verification (tls://, wss://)")
	srcIPs := fs.String("source-ips", "", "local addresses to spread connections over, e.g. 127.0.0.1-127.0.0.8")
	outageCmd := fs.String("outage-cmd", "", "storm: shell command that restarts or kills the broker (default: wait for it to go away)")
	jsonOut := fs.String("json", "", "write machine-readable results to this file (- for stdout)")
	htmlOut := fs.String("report", "", "write an HTML report with charts to this file (the page loads ECharts from its web host when opened)")
	quiet := fs.Bool("quiet", false, "no live progress and no summary table")
	qos := fs.Uint("qos", 0, "pubsub: QoS 0, 1 or 2")
	fs.StringVar(&cfg.Broker, "broker", cfg.Broker, "broker address: tcp://host:port, tls://, ws://host:port/mqtt, wss://")
	fs.StringVar(&cfg.ClientPrefix, "client-prefix", cfg.ClientPrefix, "client id prefix")
	fs.StringVar(&cfg.Username, "username", "", "username for every client")
	fs.StringVar(&cfg.Password, "password", os.Getenv("LOADGEN_PASSWORD"), "password for every client (env LOADGEN_PASSWORD)")
	fs.StringVar(&cfg.TokenURL, "token-url", "", "token API URL for per-client credentials; {clientId} is replaced")
	fs.StringVar(&cfg.TokenKey, "token-key", os.Getenv("LOADGEN_TOKEN_KEY"), "token API key (env LOADGEN_TOKEN_KEY)")
	fs.BoolVar(&cfg.TokenPrefetch, "token-prefetch", true, "conn, storm: fetch all tokens before the ramp, so the connect rate measures the broker")
	fs.DurationVar(&cfg.Keepalive, "keepalive", cfg.Keepalive, "MQTT keepalive")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "dial plus CONNECT/CONNACK timeout")
	fs.IntVar(&cfg.Parallel, "parallel", cfg.Parallel, "connect handshakes in flight at once")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "conn, storm: number of connections")
	fs.Float64Var(&cfg.ConnRate, "rate", cfg.ConnRate, "conn, storm: connects per second while ramping (0 = as fast as --parallel allows)")
	fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "conn: hold the connections this long after the ramp")
	fs.Float64Var(&cfg.Churn, "churn", 0, "conn: percent of connections closed and reopened per minute")
	fs.BoolVar(&cfg.Persistent, "persistent", false, "persistent sessions (clean start off)")
	fs.DurationVar(&cfg.SessionExpiry, "session-expiry", cfg.SessionExpiry, "MQTT 5 session expiry with --persistent")
	fs.DurationVar(&cfg.StormTimeout, "storm-timeout", cfg.StormTimeout, "storm: give up on the outage and recovery after this")
	fs.DurationVar(&cfg.ReconnectMin, "reconnect-min", cfg.ReconnectMin, "storm: first reconnect backoff (full jitter)")
	fs.DurationVar(&cfg.ReconnectMax, "reconnect-max", cfg.ReconnectMax, "storm: reconnect backoff cap")
	fs.IntVar(&cfg.Publishers, "pubs", cfg.Publishers, "pubsub: publishers")
	fs.IntVar(&cfg.Subscribers, "subs", cfg.Subscribers, "pubsub: subscribers")
	fs.StringVar(&cfg.Topology, "topology", cfg.Topology, "pubsub: all (every subscriber gets every publisher) or pairs (publisher i -> subscriber i)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "pubsub: topic prefix")
	fs.IntVar(&cfg.PayloadSize, "size", cfg.PayloadSize, "pubsub: payload bytes (at least 32)")
	fs.Float64Var(&cfg.PubRate, "pub-rate", 0, "pubsub: messages per second per publisher (0 = unthrottled)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "pubsub: publishing time (0 = until --count)")
	fs.IntVar(&cfg.Count, "count", 0, "pubsub: messages per publisher (0 = until --duration)")
	fs.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "pubsub: QoS 1/2 window per publisher")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "pubsub: after publishing, wait this long without progress for stragglers")
	fs.StringVar(&cfg.OpsAddr, "ops-addr", "", "broker ops address (host:port) to sample /metrics from")
	fs.StringVar(&cfg.ConnMetric, "conn-metric", "", "name of the connections gauge in /metrics (default: guess)")
	fs.IntVar(&cfg.BrokerPID, "broker-pid", 0, "sample the broker's CPU time and RSS from /proc/<pid>")
	fs.DurationVar(&cfg.SampleInterval, "sample", cfg.SampleInterval, "time-series and progress interval")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg.Scenario, cfg.Version, cfg.QoS = fs.Arg(0), byte(*version), byte(*qos)
	if *insecure {
		cfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by flag
	}
	var err error
	if cfg.SourceIPs, err = load.ParseIPs(*srcIPs); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *outageCmd != "" {
		cfg.Outage = load.CommandOutage(*outageCmd)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if soft, hard, err := load.RaiseFileLimit(); err != nil {
		logger.Warn("could not raise the open-file limit", "err", err, "soft", soft, "hard", hard)
	} else if need := uint64(cfg.Conns + 64); (cfg.Scenario == load.Conn || cfg.Scenario == load.Storm) && need > soft {
		logger.Warn("the open-file limit is below the connections asked for", "limit", soft, "conns", cfg.Conns)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []load.Option{load.WithLogger(logger)}
	*quiet = *quiet || *jsonOut == "-" // stdout carries the JSON alone
	live := !*quiet && isTerminal(stdout)
	if live {
		opts = append(opts, load.WithProgress(func(p load.Progress) { fmt.Fprintf(stdout, "\r\033[K%s", report.Line(p)) }))
	}
	res, runErr := load.Run(ctx, cfg, opts...)
	if live {
		fmt.Fprintln(stdout)
	}
	if res != nil {
		if !*quiet {
			_ = report.Table(stdout, res)
		}
		if err := writeOut(*jsonOut, stdout, func(f *os.File) error { return report.JSON(f, res) }); err != nil {
			logger.Error("write json", "err", err)
		}
		if err := writeOut(*htmlOut, stdout, func(f *os.File) error { return report.HTML(f, res) }); err != nil {
			logger.Error("write report", "err", err)
		}
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "loadgen:", runErr)
		if errors.Is(runErr, context.Canceled) {
			return 130
		}
		return 1
	}
	return 0
}

func writeOut(path string, stdout *os.File, fn func(*os.File) error) error {
	switch path {
	case "":
		return nil
	case "-":
		return fn(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
