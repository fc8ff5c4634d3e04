package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"gopkg.in/yaml.v3"
)

// fileConfig is the YAML configuration file: the broker's Config at the top
// level, plus logging.
type fileConfig struct {
	broker.Config `yaml:",inline"`
	Log           logConfig `yaml:"log"`
}

type logConfig struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn or error
}

func defaultFileConfig() fileConfig {
	cfg := broker.DefaultConfig()
	cfg.DataDir = "data"
	return fileConfig{Config: cfg, Log: logConfig{Format: "text", Level: "info"}}
}

// setting is one flag, with its COURIER_ environment variable.
type setting struct {
	name, usage string
	apply       func(c *fileConfig, v string) error
}

func (s setting) env() string {
	return "COURIER_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// listenerAddr sets (or, with "", removes) the listener of type typ.
func listenerAddr(typ string) func(*fileConfig, string) error {
	return func(c *fileConfig, v string) error {
		for i, l := range c.Listeners {
			if l.Type != typ {
				continue
			}
			if v == "" {
				c.Listeners = append(c.Listeners[:i:i], c.Listeners[i+1:]...)
			} else {
				c.Listeners[i].Addr = v
			}
			return nil
		}
		if v != "" {
			c.Listeners = append(c.Listeners, broker.ListenerConfig{Name: typ, Type: typ, Addr: v})
		}
		return nil
	}
}

// listenerField sets a field of the listener of type typ, which must exist.
func listenerField(typ string, set func(*broker.ListenerConfig, string)) func(*fileConfig, string) error {
	return func(c *fileConfig, v string) error {
		for i := range c.Listeners {
			if c.Listeners[i].Type == typ {
				set(&c.Listeners[i], v)
				return nil
			}
		}
		return fmt.Errorf("no %s listener is configured", typ)
	}
}

func durationVar(p func(*fileConfig) *time.Duration) func(*fileConfig, string) error {
	return func(c *fileConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*p(c) = d
		return nil
	}
}

func uintVar[T ~uint16 | ~uint32 | ~int32 | ~int64](bits int, p func(*fileConfig) *T) func(*fileConfig, string) error {
	return func(c *fileConfig, v string) error {
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative %d-bit integer", v, bits)
		}
		*p(c) = T(n)
		return nil
	}
}

func boolVar(p func(*fileConfig) *bool) func(*fileConfig, string) error {
	return func(c *fileConfig, v string) error {
		b, err := strconv.ParseBool(v)
		*p(c) = b
		return err
	}
}

var settings = []setting{
	{"config", "YAML configuration file", nil},
	{"mqtt-addr", "MQTT TCP listener host:port (empty disables)", listenerAddr(broker.ListenerTCP)},
	{"tls-addr", "MQTT over TLS listener host:port (needs --tls-cert and --tls-key)", listenerAddr(broker.ListenerTLS)},
	{"tls-cert", "PEM certificate for the TLS listener", listenerField(broker.ListenerTLS, func(l *broker.ListenerConfig, v string) { l.CertFile = v })},
	{"tls-key", "PEM private key for the TLS listener", listenerField(broker.ListenerTLS, func(l *broker.ListenerConfig, v string) { l.KeyFile = v })},
	{"ws-addr", "MQTT over WebSocket listener host:port, path /mqtt (empty disables)", listenerAddr(broker.ListenerWebSocket)},
	{"ws-allowed-origins", "comma-separated browser origins the WebSocket listener accepts", listenerField(broker.ListenerWebSocket, func(l *broker.ListenerConfig, v string) { l.AllowedOrigins = splitList(v) })},
	{"unix-socket", "MQTT unix socket path (empty disables)", listenerAddr(broker.ListenerUnix)},
	{"ops-addr", "ops HTTP listener host:port for /healthz, /readyz, /metrics (empty disables)", func(c *fileConfig, v string) error { c.Ops.Addr = v; return nil }},
	{"pprof", "serve /debug/pprof on the ops listener", boolVar(func(c *fileConfig) *bool { return &c.Ops.Pprof })},
	{"data-dir", "durable store directory (empty: no persistence)", func(c *fileConfig, v string) error { c.DataDir = v; return nil }},
	{"token-api-addr", "Courier token API listener host:port (needs auth.active_key and auth.api_keys_file)", func(c *fileConfig, v string) error { c.TokenAPI.Addr = v; return nil }},
	{"users-file", "users file with bcrypt passwords and ACLs (turns anonymous access off)", func(c *fileConfig, v string) error { c.Auth.UsersFile = v; return nil }},
	{"allow-anonymous-network", "allow anonymous clients on non-loopback listeners", boolVar(func(c *fileConfig) *bool { return &c.AllowAnonymousNetwork })},
	{"shutdown-timeout", "how long a graceful shutdown may take", durationVar(func(c *fileConfig) *time.Duration { return &c.ShutdownTimeout })},
	{"max-packet-size", "largest MQTT packet accepted, in bytes", uintVar(32, func(c *fileConfig) *uint32 { return &c.Limits.MaxPacketSize })},
	{"max-clients", "maximum concurrent clients (0: no cap)", uintVar(63, func(c *fileConfig) *int64 { return &c.Limits.MaxClients })},
	{"max-pending-writes", "per-client queue of packets waiting for the socket", uintVar(31, func(c *fileConfig) *int32 { return &c.Limits.MaxPendingWrites })},
	{"max-offline-queue", "QoS 1/2 messages held per session", uintVar(16, func(c *fileConfig) *uint16 { return &c.Limits.MaxOfflineQueue })},
	{"receive-maximum", "QoS 1/2 messages a client may have in flight to the broker", uintVar(16, func(c *fileConfig) *uint16 { return &c.Limits.ReceiveMaximum })},
	{"max-session-expiry", "longest session expiry granted", durationVar(func(c *fileConfig) *time.Duration { return &c.Limits.MaxSessionExpiry })},
	{"max-message-expiry", "remove messages older than this even without their own expiry (0: never)", durationVar(func(c *fileConfig) *time.Duration { return &c.Limits.MaxMessageExpiry })},
	{"keepalive-floor", "keepalive imposed on clients that ask for none", durationVar(func(c *fileConfig) *time.Duration { return &c.Limits.KeepaliveFloor })},
	{"keepalive-ceiling", "largest keepalive a client may use", durationVar(func(c *fileConfig) *time.Duration { return &c.Limits.KeepaliveCeiling })},
	{"write-timeout", "close a client that takes no data for this long (0: never)", durationVar(func(c *fileConfig) *time.Duration { return &c.Limits.WriteTimeout })},
	{"log-format", "log format: text or json", func(c *fileConfig, v string) error { c.Log.Format = v; return nil }},
	{"log-level", "log level: debug, info, warn or error", func(c *fileConfig, v string) error { c.Log.Level = v; return nil }},
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// errHelp is returned when --help was asked for; usage is already printed.
var errHelp = flag.ErrHelp

// loadConfig builds the configuration from defaults, then the YAML file,
// then COURIER_* environment variables, then flags, and validates it. It
// reports every problem it finds, joined.
func loadConfig(args []string, lookupEnv func(string) (string, bool), usageOut io.Writer) (fileConfig, error) {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	given := map[string]string{}
	var order []string
	for _, s := range settings {
		fs.Func(s.name, fmt.Sprintf("%s (env %s)", s.usage, s.env()), func(v string) error {
			if _, dup := given[s.name]; !dup {
				order = append(order, s.name)
			}
			given[s.name] = v
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: broker [flags]\n\nRuns the courier MQTT broker. Settings come from defaults, then --config, then\nCOURIER_* environment variables, then flags; the last one wins.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return fileConfig{}, err
	}
	if fs.NArg() > 0 {
		return fileConfig{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	cfg := defaultFileConfig()
	var errs []error
	path, ok := given["config"]
	if !ok {
		path, _ = lookupEnv(settings[0].env())
	}
	if path != "" {
		if err := readFile(path, &cfg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range settings[1:] {
		if v, ok := lookupEnv(s.env()); ok {
			if err := s.apply(&cfg, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", s.env(), v, err))
			}
		}
	}
	for _, name := range order {
		for _, s := range settings[1:] {
			if s.name == name {
				if err := s.apply(&cfg, given[name]); err != nil {
					errs = append(errs, fmt.Errorf("--%s=%q: %w", name, given[name], err))
				}
			}
		}
	}
	if cfg.Log.Format != "text" && cfg.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q is not text or json", cfg.Log.Format))
	}
	if _, err := parseLevel(cfg.Log.Level); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

func readFile(path string, cfg *fileConfig) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a typo is an error, not a silently ignored key
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}
