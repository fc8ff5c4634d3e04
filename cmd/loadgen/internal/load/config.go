package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// Scenario names.
const (
	Conn   = "conn"
	PubSub = "pubsub"
	Storm  = "storm"
)

// Topologies for pubsub.
const (
	// All: every subscriber subscribes to every publisher (P->1 fan-in, 1->S fan-out, P->S).
	All = "all"
	// Pairs: publisher i publishes only to subscriber i (P == S independent 1->1 streams).
	Pairs = "pairs"
)

// Config is one loadgen run. Start from DefaultConfig.
type Config struct {
	Scenario  string
	Broker    string // tcp://host:port, tls://, ws://host:port/mqtt, wss://; bare host:port is tcp
	Version   byte   // wire.V311 or wire.V5
	TLS       *tls.Config
	SourceIPs []net.IP // local addresses used in turn (e.g. 127.0.0.1-127.0.0.8)

	ClientPrefix   string // client ids are <prefix><index>
	Username       string
	Password       string
	TokenURL       string // token API URL; {clientId} is replaced, else ?clientId= is added
	TokenKey       string // API key sent as a bearer token
	TokenPrefetch  bool   // conn, storm: fetch every client's token before the ramp
	Keepalive      time.Duration
	ConnectTimeout time.Duration
	Parallel       int // connect handshakes in flight at once

	// conn and storm
	Conns         int
	ConnRate      float64       // connects per second during the ramp; 0 = as fast as Parallel allows
	Hold          time.Duration // conn: how long to hold the connections after the ramp
	Churn         float64       // conn: percent of connections closed and reopened per minute
	Persistent    bool          // clean start off, with SessionExpiry
	SessionExpiry time.Duration // MQTT 5 session expiry when Persistent
	// storm: Outage, if set, is run once all clients are connected (e.g. to restart
	// the broker); without it loadgen waits for the broker to go away.
	Outage       func(ctx context.Context) error
	StormTimeout time.Duration // storm: give up waiting for the outage and the recovery after this
	ReconnectMin time.Duration // storm: first reconnect backoff (full jitter)
	ReconnectMax time.Duration // storm: backoff cap

	// pubsub
	Publishers  int
	Subscribers int
	Topology    string
	Topic       string // topic prefix: publishers publish to <Topic>/<index>
	QoS         byte
	PayloadSize int
	PubRate     float64       // messages per second per publisher; 0 = unthrottled
	Duration    time.Duration // publishing time (0 = until Count)
	Count       int           // messages per publisher (0 = until Duration)
	Inflight    int           // QoS 1/2 window per publisher (the broker's Receive Maximum may lower it)
	Drain       time.Duration // after publishing, how long to wait for stragglers with no progress

	// broker sampling
	OpsAddr        string // host:port of the broker's ops listener (GET /metrics)
	ConnMetric     string // name of the connections gauge in /metrics ("" = guess)
	BrokerPID      int    // sample CPU time and RSS from /proc/<pid>
	SampleInterval time.Duration
}

// DefaultConfig returns a fresh Config with working defaults.
func DefaultConfig() Config {
	return Config{
		Scenario:       PubSub,
		Broker:         "tcp://127.0.0.1:1883",
		Version:        wire.V5,
		ClientPrefix:   "loadgen-",
		Keepalive:      60 * time.Second,
		ConnectTimeout: 10 * time.Second,
		Parallel:       64,
		Conns:          1000,
		ConnRate:       1000,
		Hold:           10 * time.Second,
		SessionExpiry:  time.Hour,
		StormTimeout:   60 * time.Second,
		ReconnectMin:   100 * time.Millisecond,
		ReconnectMax:   2 * time.Second,
		Publishers:     1,
		Subscribers:    1,
		Topology:       All,
		Topic:          "loadgen",
		QoS:            0,
		PayloadSize:    64,
		Duration:       10 * time.Second,
		Inflight:       256,
		Drain:          2 * time.Second,
		SampleInterval: time.Second,
	}
}

// Validate reports every problem in c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	switch c.Scenario {
	case Conn, PubSub, Storm:
	default:
		bad("scenario %q (want conn, pubsub or storm)", c.Scenario)
	}
	if _, err := wire.NewDialer(c.Broker, nil, nil); err != nil {
		bad("broker %q: %v", c.Broker, err)
	}
	if c.Version != wire.V311 && c.Version != wire.V5 {
		bad("protocol version %d (want 4 for 3.1.1 or 5)", c.Version)
	}
	if c.Keepalive < 0 || c.Keepalive > 65535*time.Second {
		bad("keepalive %v out of range", c.Keepalive)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect timeout must be positive")
	}
	if c.Parallel < 1 {
		bad("parallel must be at least 1")
	}
	if c.TokenKey != "" && c.TokenURL == "" {
		bad("token key given without a token URL")
	}
	if c.SampleInterval <= 0 {
		bad("sample interval must be positive")
	}
	switch c.Scenario {
	case Conn, Storm:
		if c.Conns < 1 {
			bad("conns must be at least 1")
		}
		if c.ConnRate < 0 {
			bad("connect rate must not be negative")
		}
		if c.Scenario == Conn && c.Hold < 0 {
			bad("hold must not be negative")
		}
		if c.Churn < 0 || c.Churn > 6000 {
			bad("churn %v%%/min out of range", c.Churn)
		}
		if c.Scenario == Storm && (c.StormTimeout <= 0 || c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin) {
			bad("storm needs a positive timeout and 0 < reconnect-min <= reconnect-max")
		}
	case PubSub:
		if c.Publishers < 1 || c.Subscribers < 0 {
			bad("need at least 1 publisher and no negative subscribers")
		}
		if c.Topology != All && c.Topology != Pairs {
			bad("topology %q (want all or pairs)", c.Topology)
		}
		if c.Topology == Pairs && c.Publishers != c.Subscribers {
			bad("pairs topology needs as many subscribers as publishers")
		}
		if c.QoS > 2 {
			bad("qos %d", c.QoS)
		}
		if c.PayloadSize < headerSize {
			bad("payload size %d below the %d-byte sequence header", c.PayloadSize, headerSize)
		}
		if c.Duration <= 0 && c.Count <= 0 {
			bad("pubsub needs a duration or a count, so it ends")
		}
		if c.Duration < 0 || c.Count < 0 || c.PubRate < 0 {
			bad("duration, count and rate must not be negative")
		}
		if c.Inflight < 1 || c.Inflight > 65535 {
			bad("inflight must be 1..65535")
		}
		if c.Drain < 0 {
			bad("drain must not be negative")
		}
		if c.Topic == "" {
			bad("topic prefix must not be empty")
		}
	}
	return errors.Join(errs...)
}
