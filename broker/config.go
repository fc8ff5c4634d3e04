package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/courier-mqtt/courier/auth"
)

// Listener types accepted in ListenerConfig.Type.
const (
	ListenerTCP       = "tcp"  // plain MQTT over TCP
	ListenerTLS       = "tls"  // MQTT over TLS
	ListenerWebSocket = "ws"   // MQTT over WebSocket (TLS when a certificate is given)
	ListenerUnix      = "unix" // MQTT over a unix domain socket; Addr is the socket path
)

// Config holds every broker setting that can come from a file, the environment
// or flags. Use DefaultConfig for a fresh value and Validate before use; New
// validates again and never modifies the caller's value.
type Config struct {
	// Listeners are the network endpoints MQTT clients connect to. At least one
	// is required. Names must be unique; Addr(name) reports the bound address.
	Listeners []ListenerConfig `yaml:"listeners"`

	// DataDir is where the durable store keeps sessions, queued and retained
	// messages. Empty means no persistence: state lives in memory only.
	DataDir string `yaml:"data_dir"`

	// Ops is the operations HTTP listener (/healthz, /readyz, /metrics, pprof).
	Ops OpsConfig `yaml:"ops"`

	// Limits bound what one client or message may cost the broker.
	Limits Limits `yaml:"limits"`

	// AllowAnonymous lets clients connect without credentials when no
	// authentication is configured. Anonymous access is only ever allowed on
	// loopback listeners (as mosquitto 2's local-only mode) unless
	// AllowAnonymousNetwork is also set.
	AllowAnonymous bool `yaml:"allow_anonymous"`

	// AllowAnonymousNetwork permits anonymous clients on listeners bound to
	// non-loopback addresses. Off by default: an open broker on a network is
	// almost always a mistake.
	AllowAnonymousNetwork bool `yaml:"allow_anonymous_network"`

	// Auth configures authentication: broker tokens (keys), a users file,
	// and what the token API issues. With token keys or a users file set,
	// anonymous access is off whatever AllowAnonymous says.
	Auth auth.Config `yaml:"auth"`

	// TokenAPI is the HTTP listener serving the Courier token API
	// (GET/POST /v1/token). It needs auth.active_key and auth.api_keys_file.
	TokenAPI TokenAPIConfig `yaml:"token_api"`

	// ShutdownTimeout bounds a graceful shutdown started by a signal in
	// cmd/broker. Embedders pass their own context to Shutdown instead.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// ListenerConfig describes one listener.
type ListenerConfig struct {
	// Name identifies the listener in Addr, logs and metrics. Defaults to Type.
	Name string `yaml:"name"`
	// Type is one of tcp, tls, ws or unix.
	Type string `yaml:"type"`
	// Addr is host:port to bind (port 0 picks a free port), or the socket
	// path for unix listeners.
	Addr string `yaml:"addr"`
	// CertFile and KeyFile are PEM files for tls listeners, and turn a ws
	// listener into wss. TLSConfig, which only code can set, takes precedence.
	CertFile  string      `yaml:"cert_file"`
	KeyFile   string      `yaml:"key_file"`
	TLSConfig *tls.Config `yaml:"-"`
	// Path is the HTTP path a ws listener upgrades on. Defaults to /mqtt.
	Path string `yaml:"path"`
	// AllowedOrigins lists the Origin header values a ws listener accepts
	// (exact scheme://host[:port], or "*" for any). Requests without an
	// Origin header (non-browser clients) are always accepted; browser
	// requests from an origin not listed are refused with 403.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// OpsConfig configures the operations HTTP listener.
type OpsConfig struct {
	// Addr is host:port for /healthz, /readyz and /metrics. Empty disables it.
	Addr string `yaml:"addr"`
	// Pprof mounts net/http/pprof under /debug/pprof.
	Pprof bool `yaml:"pprof"`
}

// TokenAPIConfig configures the token API listener.
type TokenAPIConfig struct {
	// Addr is host:port to serve the token API on. Empty disables it.
	Addr string `yaml:"addr"`
}

// AuthEnabled reports whether clients must authenticate: token keys or a
// users file are configured.
func (c Config) AuthEnabled() bool { return c.Auth.TokenAuthEnabled() || c.Auth.UsersFile != "" }

// Limits are the bounds the broker enforces. Every one is set on purpose;
// see the configuration reference in README.md.
type Limits struct {
	// MaxPacketSize is the largest MQTT packet accepted, in bytes (and
	// announced to MQTT 5 clients). A larger packet closes the connection.
	MaxPacketSize uint32 `yaml:"max_packet_size"`
	// MaxClients caps concurrent connections; 0 means no cap.
	MaxClients int64 `yaml:"max_clients"`
	// MaxPendingWrites is the per-client queue of packets waiting for the
	// socket. Each slot costs a pointer (8 bytes) per client, idle or not.
	// When it is nearly full, QoS 1/2 messages to the client wait for it
	// (their publishers with them, up to WriteTimeout); QoS 0 messages are
	// dropped.
	MaxPendingWrites int32 `yaml:"max_pending_writes"`
	// MaxOfflineQueue caps the QoS 1/2 messages held per session (in flight
	// or queued while the client is offline). Messages beyond it are dropped
	// and reported as EventMessageDropped.
	MaxOfflineQueue uint16 `yaml:"max_offline_queue"`
	// ReceiveMaximum is how many QoS 1/2 messages a client may have in flight
	// towards the broker at once (announced in CONNACK).
	ReceiveMaximum uint16 `yaml:"receive_maximum"`
	// MaxSessionExpiry caps the session expiry an MQTT 5 client may ask for,
	// and is the expiry of MQTT 3 persistent (clean session off) sessions.
	MaxSessionExpiry time.Duration `yaml:"max_session_expiry"`
	// MaxMessageExpiry, when non-zero, removes queued and retained messages
	// older than it even if they carry no expiry of their own. Zero (the
	// default) keeps messages until their own expiry, if any: unlike stock
	// mochi, retained messages do not silently vanish after 24 hours.
	MaxMessageExpiry time.Duration `yaml:"max_message_expiry"`
	// KeepaliveFloor is the keepalive imposed on clients that ask for 0 (no
	// keepalive): without it a silent half-open connection is never reaped.
	// MQTT 5 clients are told in CONNACK (Server Keep Alive).
	KeepaliveFloor time.Duration `yaml:"keepalive_floor"`
	// KeepaliveCeiling caps the keepalive a client may ask for. MQTT 5
	// clients are told in CONNACK; MQTT 3 clients cannot be told, and are
	// disconnected after 1.5x the ceiling of silence.
	KeepaliveCeiling time.Duration `yaml:"keepalive_ceiling"`
	// WriteTimeout closes a connection whose client takes no data for this
	// long (64 KiB at a time) while the broker writes to it: a client that
	// stops reading would otherwise stall every publisher sending it QoS 1/2
	// messages. 0 turns the bound off.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// DefaultConfig returns a fresh configuration: a TCP listener on
// 127.0.0.1:1883, a WebSocket listener on 127.0.0.1:8083, no persistence, the
// ops listener on 127.0.0.1:8080, anonymous loopback clients allowed, and the
// limits documented on Limits.
func DefaultConfig() Config {
	return Config{
		Listeners: []ListenerConfig{
			{Name: "tcp", Type: ListenerTCP, Addr: "127.0.0.1:1883"},
			{Name: "ws", Type: ListenerWebSocket, Addr: "127.0.0.1:8083", Path: "/mqtt"},
		},
		Ops:             OpsConfig{Addr: "127.0.0.1:8080"},
		AllowAnonymous:  true,
		ShutdownTimeout: 10 * time.Second,
		Limits:          DefaultLimits(),
	}
}

// DefaultLimits returns the default Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxPacketSize:    1 << 20,
		MaxPendingWrites: 1024,
		MaxOfflineQueue:  8192,
		ReceiveMaximum:   1024,
		MaxSessionExpiry: 7 * 24 * time.Hour,
		KeepaliveFloor:   5 * time.Minute,
		KeepaliveCeiling: math.MaxUint16 * time.Second,
		WriteTimeout:     30 * time.Second,
	}
}

// Validate reports every problem in c at once, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Listeners) == 0 {
		bad("listeners: at least one listener is required")
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		name := l.name()
		where := fmt.Sprintf("listeners[%d] (%s)", i, name)
		if name == "ops" || name == "token-api" {
			bad("%s: the names ops and token-api are reserved", where)
		}
		if names[name] {
			bad("%s: duplicate listener name %q", where, name)
		}
		names[name] = true
		switch l.Type {
		case ListenerTCP, ListenerTLS, ListenerWebSocket:
			if _, _, err := net.SplitHostPort(l.Addr); err != nil {
				bad("%s: addr %q is not host:port: %v", where, l.Addr, err)
			}
		case ListenerUnix:
			if l.Addr == "" {
				bad("%s: addr must be a socket path", where)
			}
		default:
			bad("%s: type %q is not one of tcp, tls, ws, unix", where, l.Type)
		}
		if l.Type == ListenerTLS && l.TLSConfig == nil && (l.CertFile == "" || l.KeyFile == "") {
			bad("%s: a tls listener needs cert_file and key_file", where)
		}
		if (l.CertFile == "") != (l.KeyFile == "") {
			bad("%s: cert_file and key_file must be set together", where)
		}
		for _, f := range []string{l.CertFile, l.KeyFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				bad("%s: %v", where, err)
			}
		}
		if l.Type != ListenerWebSocket && (l.Path != "" || len(l.AllowedOrigins) > 0) {
			bad("%s: path and allowed_origins apply only to ws listeners", where)
		}
		if l.Path != "" && !strings.HasPrefix(l.Path, "/") {
			bad("%s: path %q must start with /", where, l.Path)
		}
		if c.AllowAnonymous && !c.AuthEnabled() && !c.AllowAnonymousNetwork && !l.isLocal() {
			bad("%s: addr %q is not loopback; anonymous access is local-only (configure authentication, or set allow_anonymous_network)", where, l.Addr)
		}
	}
	if c.Ops.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Ops.Addr); err != nil {
			bad("ops.addr %q is not host:port: %v", c.Ops.Addr, err)
		}
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("auth: %w", err))
	}
	if c.TokenAPI.Addr != "" {
		if _, _, err := net.SplitHostPort(c.TokenAPI.Addr); err != nil {
			bad("token_api.addr %q is not host:port: %v", c.TokenAPI.Addr, err)
		}
		if c.Auth.ActiveKey == "" || c.Auth.APIKeysFile == "" {
			bad("token_api.addr is set but auth.active_key and auth.api_keys_file are not: the token API cannot authenticate callers or sign tokens")
		}
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout must not be negative")
	}
	errs = append(errs, c.Limits.validate()...)
	return errors.Join(errs...)
}

func (l Limits) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("limits."+format, args...)) }
	if l.MaxPacketSize != 0 && l.MaxPacketSize < 64 {
		bad("max_packet_size %d is below 64 bytes", l.MaxPacketSize)
	}
	if l.MaxPacketSize > 268435455 {
		bad("max_packet_size %d exceeds the MQTT maximum of 268435455", l.MaxPacketSize)
	}
	if l.MaxClients < 0 {
		bad("max_clients must not be negative")
	}
	if l.MaxPendingWrites < 1 {
		bad("max_pending_writes must be at least 1")
	}
	if l.MaxOfflineQueue < 1 {
		bad("max_offline_queue must be at least 1")
	}
	if l.ReceiveMaximum < 1 {
		bad("receive_maximum must be at least 1")
	}
	if l.MaxSessionExpiry < 0 || l.MaxSessionExpiry > math.MaxUint32*time.Second {
		bad("max_session_expiry %s is outside 0..%s", l.MaxSessionExpiry, time.Duration(math.MaxUint32)*time.Second)
	}
	if l.MaxMessageExpiry < 0 {
		bad("max_message_expiry must not be negative")
	}
	if l.KeepaliveFloor < time.Second || l.KeepaliveFloor > math.MaxUint16*time.Second {
		bad("keepalive_floor %s is outside 1s..65535s", l.KeepaliveFloor)
	}
	if l.KeepaliveCeiling < time.Second || l.KeepaliveCeiling > math.MaxUint16*time.Second {
		bad("keepalive_ceiling %s is outside 1s..65535s", l.KeepaliveCeiling)
	}
	if l.WriteTimeout < 0 {
		bad("write_timeout must not be negative")
	}
	if l.KeepaliveFloor > l.KeepaliveCeiling {
		bad("keepalive_floor %s is above keepalive_ceiling %s", l.KeepaliveFloor, l.KeepaliveCeiling)
	}
	return errs
}

func (l ListenerConfig) name() string {
	if l.Name != "" {
		return l.Name
	}
	return l.Type
}

// isLocal reports whether the listener is reachable only from this host.
func (l ListenerConfig) isLocal() bool {
	if l.Type == ListenerUnix {
		return true
	}
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return true // reported elsewhere
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
