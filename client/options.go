package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Option configures a Client in NewClient.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// Dialer opens network connections; *net.Dialer satisfies it. WithDialer makes
// it replaceable (tests route connections through proxies with it).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Backoff returns how long to wait before reconnect attempt n (n starts at 1;
// the first attempt after a lost connection is immediate).
type Backoff func(attempt int) time.Duration

// Credential is a user name and password for the CONNECT packet.
type Credential struct {
	Username string
	Password string
}

// CredentialFetcher supplies credentials; it is called on every connect attempt.
type CredentialFetcher interface {
	Credentials(ctx context.Context) (*Credential, error)
}

// TCPAddress is a broker host and port.
type TCPAddress struct {
	Host string
	Port uint16
}

func (a TCPAddress) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// Resolver supplies a changing list of broker addresses (courier-go's
// Resolver). The client connects to the first address of the latest list that
// answers, in order.
type Resolver interface {
	UpdateChan() <-chan []TCPAddress
	Done() <-chan struct{}
}

// Will is the Last Will message the broker publishes when the connection is
// lost without a DISCONNECT.
type Will struct {
	Topic    string
	Payload  []byte
	QoS      QOSLevel
	Retained bool
	Delay    time.Duration // MQTT 5 will delay interval
}

// DropPolicy says which message the offline buffer discards when it is full.
type DropPolicy int

const (
	// DropOldest discards the oldest buffered message to make room.
	DropOldest DropPolicy = iota
	// DropNewest refuses the new message (Publish returns ErrOfflineBufferFull).
	DropNewest
)

type options struct {
	addresses     []*url.URL
	resolver      Resolver
	clientID      string
	clientIDSet   bool
	username      string
	password      string
	passwordSet   bool
	credFetcher   CredentialFetcher
	tokenAPI      *TokenAPI
	tlsConfig     *tls.Config
	wsHeader      http.Header
	keepAlive     time.Duration
	cleanSession  bool
	sessionExpiry time.Duration
	expirySet     bool

	autoReconnect  bool
	backoff        Backoff
	minBackoff     time.Duration
	maxBackoff     time.Duration
	connectTimeout time.Duration
	writeTimeout   time.Duration
	ackTimeout     time.Duration
	credTimeout    time.Duration
	gracePeriod    time.Duration

	will      *Will
	logger    *slog.Logger
	encoder   EncoderFunc
	decoder   DecoderFunc
	manualAck bool
	dialer    Dialer

	persistDir    string
	unmatchedTTL  time.Duration
	unmatchedMax  int
	offlineSize   int
	offlinePolicy DropPolicy

	multiConn    bool
	poolSize     int
	poolSizeSet  bool
	sharedPred   func(topic string) bool
	sharedPredOn bool

	onConnect        func(PubSub)
	onConnectionLost func(error)
	onReconnect      func(PubSub)

	errs []error
}

func defaultClientID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "courier-client"
	}
	return h
}

func defaultOptions() options {
	return options{
		clientID:       defaultClientID(),
		keepAlive:      60 * time.Second,
		cleanSession:   false,
		autoReconnect:  true,
		minBackoff:     time.Second,
		maxBackoff:     30 * time.Second,
		connectTimeout: 15 * time.Second,
		writeTimeout:   10 * time.Second,
		credTimeout:    10 * time.Second,
		gracePeriod:    30 * time.Second,
		logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		encoder:        DefaultEncoder,
		decoder:        DefaultDecoder,
		dialer:         &net.Dialer{},
		offlineSize:    1000,
		offlinePolicy:  DropOldest,
	}
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

// validate checks every option at once and fills derived defaults.
func (o *options) validate() error {
	errs := o.errs
	conflict := func(msg string) { errs = append(errs, fmt.Errorf("%w: %s", ErrConflictingOptions, msg)) }
	if o.resolver != nil && len(o.addresses) > 0 {
		conflict("WithResolver and WithAddress/WithBrokerURL")
	}
	if o.credFetcher != nil && o.tokenAPI != nil {
		conflict("WithCredentialFetcher and WithTokenAPI")
	}
	if (o.credFetcher != nil || o.tokenAPI != nil) && (o.username != "" || o.passwordSet) {
		conflict("WithUsername/WithPassword and a credential source")
	}
	if o.backoff != nil && (o.minBackoff != time.Second || o.maxBackoff != 30*time.Second) {
		conflict("WithBackoff and WithReconnectBackoff/WithMaxReconnectInterval")
	}
	if o.multiConn {
		if o.resolver == nil {
			conflict("UseMultiConnectionMode needs WithResolver")
		}
		if o.tokenAPI != nil {
			conflict("UseMultiConnectionMode and WithTokenAPI (the token names one address)")
		}
		if o.persistDir != "" {
			conflict("UseMultiConnectionMode and WithPersistence")
		}
	} else {
		if o.poolSizeSet {
			conflict("WithPoolSize without UseMultiConnectionMode")
		}
		if o.sharedPredOn {
			conflict("SharedSubscriptionPredicate without UseMultiConnectionMode")
		}
	}
	if o.poolSizeSet && o.poolSize < 1 {
		errs = append(errs, fmt.Errorf("%w: pool size %d", ErrInvalidOption, o.poolSize))
	}
	if o.sharedPredOn && o.sharedPred == nil {
		errs = append(errs, fmt.Errorf("%w: nil shared subscription predicate", ErrInvalidOption))
	}
	if len(o.addresses) == 0 && o.resolver == nil && o.tokenAPI == nil {
		errs = append(errs, ErrNoAddress)
	}
	if o.minBackoff <= 0 || o.maxBackoff < o.minBackoff {
		errs = append(errs, fmt.Errorf("%w: reconnect backoff min %s max %s", ErrInvalidOption, o.minBackoff, o.maxBackoff))
	}
	if o.keepAlive < 0 || o.keepAlive > 65535*time.Second {
		errs = append(errs, fmt.Errorf("%w: keepalive %s", ErrInvalidOption, o.keepAlive))
	}
	if o.sessionExpiry < 0 || o.sessionExpiry/time.Second > 0xFFFFFFFF {
		errs = append(errs, fmt.Errorf("%w: session expiry %s", ErrInvalidOption, o.sessionExpiry))
	}
	if o.connectTimeout <= 0 || o.writeTimeout <= 0 || o.ackTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: timeouts must be positive", ErrInvalidOption))
	}
	if o.unmatchedTTL < 0 || o.unmatchedMax < 0 || (o.unmatchedTTL > 0) != (o.unmatchedMax > 0) {
		errs = append(errs, fmt.Errorf("%w: unmatched retention %s for %d messages", ErrInvalidOption, o.unmatchedTTL, o.unmatchedMax))
	}
	if o.offlineSize < 0 {
		errs = append(errs, fmt.Errorf("%w: offline buffer size %d", ErrInvalidOption, o.offlineSize))
	}
	if o.will != nil && (o.will.Topic == "" || o.will.QoS > QOSTwo) {
		errs = append(errs, fmt.Errorf("%w: will needs a topic and QoS 0-2", ErrInvalidOption))
	}
	if o.encoder == nil || o.decoder == nil || o.dialer == nil || o.logger == nil {
		errs = append(errs, fmt.Errorf("%w: nil encoder, decoder, dialer or logger", ErrInvalidOption))
	}
	if !o.expirySet {
		if o.cleanSession {
			o.sessionExpiry = 0
		} else {
			// A persistent session lives until the broker's limit, like MQTT 3.1.1's
			// clean-session=false that courier-go users expect.
			o.sessionExpiry = 0xFFFFFFFF * time.Second
		}
	}
	if o.sharedPred == nil {
		o.sharedPred = IsSharedSubscription
	}
	if o.backoff == nil {
		o.backoff = FullJitterBackoff(o.minBackoff, o.maxBackoff)
	}
	return errors.Join(errs...)
}

func parseBrokerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp", "tls", "ssl", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("no host in %q", raw)
	}
	return u, nil
}

// WithAddress adds a broker address (tcp, or tls with WithTLS). Given several
// times, the addresses are tried in order on every connect attempt (fallback).
func WithAddress(host string, port uint16) Option {
	return optionFunc(func(o *options) {
		o.addresses = append(o.addresses, &url.URL{Scheme: "mqtt", Host: TCPAddress{host, port}.String()})
	})
}

// WithTCPAddress is courier-go's name for WithAddress.
func WithTCPAddress(host string, port uint16) Option { return WithAddress(host, port) }

// WithBrokerURL adds a broker by URL: mqtt:// or tcp://, tls:// or mqtts://,
// ws:// or wss:// (WebSocket, e.g. ws://host:1882/mqtt). Several are tried in order.
func WithBrokerURL(rawURL string) Option {
	return optionFunc(func(o *options) {
		u, err := parseBrokerURL(rawURL)
		if err != nil {
			o.fail("broker url: %v", err)
			return
		}
		o.addresses = append(o.addresses, u)
	})
}

// WithResolver takes the broker addresses from r; it conflicts with WithAddress.
func WithResolver(r Resolver) Option { return optionFunc(func(o *options) { o.resolver = r }) }

// WithClientID sets the MQTT client id (default: the host name).
func WithClientID(id string) Option {
	return optionFunc(func(o *options) { o.clientID, o.clientIDSet = id, true })
}

// WithUsername sets the CONNECT user name.
func WithUsername(u string) Option { return optionFunc(func(o *options) { o.username = u }) }

// WithPassword sets the CONNECT password.
func WithPassword(p string) Option {
	return optionFunc(func(o *options) { o.password, o.passwordSet = p, true })
}

// WithCredentialFetcher asks f for credentials on every connect attempt (bounded
// by a 10 s timeout).
func WithCredentialFetcher(f CredentialFetcher) Option {
	return optionFunc(func(o *options) { o.credFetcher = f })
}

// WithTokenAPI takes connect credentials (and optionally client id, address,
// keepalive and clean session) from a Courier token API. One TokenAPI may be
// shared by many clients: concurrent fetches are single-flighted.
func WithTokenAPI(t *TokenAPI) Option { return optionFunc(func(o *options) { o.tokenAPI = t }) }

// WithTLS sets the TLS configuration; tcp addresses are then dialled with TLS.
func WithTLS(cfg *tls.Config) Option { return optionFunc(func(o *options) { o.tlsConfig = cfg }) }

// WithWebSocketHeader adds HTTP headers to the WebSocket upgrade request.
func WithWebSocketHeader(h http.Header) Option {
	return optionFunc(func(o *options) { o.wsHeader = h.Clone() })
}

// WithKeepAlive sets the MQTT keepalive (default 60 s, whole seconds).
func WithKeepAlive(d time.Duration) Option { return optionFunc(func(o *options) { o.keepAlive = d }) }

// WithCleanSession starts every connection with a clean session (default false:
// the session persists, and QoS 1/2 messages queued while offline are delivered).
func WithCleanSession(clean bool) Option {
	return optionFunc(func(o *options) { o.cleanSession = clean })
}

// WithSessionExpiry sets the MQTT 5 session expiry interval (default: the
// maximum for a persistent session, 0 with WithCleanSession(true)).
func WithSessionExpiry(d time.Duration) Option {
	return optionFunc(func(o *options) { o.sessionExpiry, o.expirySet = d, true })
}

// WithAutoReconnect turns reconnecting after a lost connection on or off (default on).
func WithAutoReconnect(on bool) Option { return optionFunc(func(o *options) { o.autoReconnect = on }) }

// WithReconnectBackoff sets the full-jitter reconnect backoff bounds (default 1 s to 30 s).
func WithReconnectBackoff(minDelay, maxDelay time.Duration) Option {
	return optionFunc(func(o *options) { o.minBackoff, o.maxBackoff = minDelay, maxDelay })
}

// WithMaxReconnectInterval sets the backoff cap (courier-go's name).
func WithMaxReconnectInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.maxBackoff = d })
}

// WithBackoff replaces the reconnect backoff function (a test seam; conflicts
// with WithReconnectBackoff).
func WithBackoff(b Backoff) Option { return optionFunc(func(o *options) { o.backoff = b }) }

// WithConnectTimeout bounds each connect attempt: dial, TLS/WebSocket handshake
// and CONNACK (default 15 s).
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.connectTimeout = d })
}

// WithWriteTimeout bounds operations whose ctx has no deadline (default 10 s).
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.writeTimeout = d })
}

// WithAckTimeout turns on the watchdog: a packet expecting a reply (QoS 1/2
// PUBLISH, SUBSCRIBE, UNSUBSCRIBE) that gets none within d means the
// connection is dead; it is closed and a reconnect starts at once. Off by default.
func WithAckTimeout(d time.Duration) Option { return optionFunc(func(o *options) { o.ackTimeout = d }) }

// WithGracefulShutdownPeriod bounds Stop (default 30 s).
func WithGracefulShutdownPeriod(d time.Duration) Option {
	return optionFunc(func(o *options) { o.gracePeriod = d })
}

// WithWill sets the Last Will.
func WithWill(w Will) Option { return optionFunc(func(o *options) { o.will = &w }) }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// WithCustomEncoder replaces the payload encoder (default DefaultEncoder).
func WithCustomEncoder(e EncoderFunc) Option { return optionFunc(func(o *options) { o.encoder = e }) }

// WithCustomDecoder replaces the payload decoder (default DefaultDecoder).
func WithCustomDecoder(d DecoderFunc) Option { return optionFunc(func(o *options) { o.decoder = d }) }

// WithManualAck leaves acknowledging received QoS 1/2 messages to the handler
// (Message.Ack). The broker receives acks in arrival order.
func WithManualAck() Option { return optionFunc(func(o *options) { o.manualAck = true }) }

// WithDialer replaces the network dialer (a test seam).
func WithDialer(d Dialer) Option { return optionFunc(func(o *options) { o.dialer = d }) }

// WithPersistence stores the MQTT session state (unacknowledged QoS 1/2
// messages) in dir/session and the offline buffer in dir/queue, so they survive
// a restart of the process. Without it both live in memory.
func WithPersistence(dir string) Option { return optionFunc(func(o *options) { o.persistDir = dir }) }

// WithOfflineBuffer bounds the messages (QoS 1/2) buffered while disconnected
// (default 1000, DropOldest). Size 0 disables buffering: Publish then returns
// ErrNotConnected while offline.
func WithOfflineBuffer(size int, policy DropPolicy) Option {
	return optionFunc(func(o *options) { o.offlineSize, o.offlinePolicy = size, policy })
}

// WithOnConnect is called after every connection (must not block long).
func WithOnConnect(f func(PubSub)) Option { return optionFunc(func(o *options) { o.onConnect = f }) }

// WithOnConnectionLost is called when an established connection drops.
func WithOnConnectionLost(f func(error)) Option {
	return optionFunc(func(o *options) { o.onConnectionLost = f })
}

// WithOnReconnect is called after every connection but the first.
func WithOnReconnect(f func(PubSub)) Option {
	return optionFunc(func(o *options) { o.onReconnect = f })
}

// WithUnmatchedRetention keeps up to maxMessages received messages that
// matched no handler and no stream for ttl, and replays them into the first
// stream opened later whose filter matches (Courier Android keeps them 360 s).
// Off by default.
func WithUnmatchedRetention(ttl time.Duration, maxMessages int) Option {
	return optionFunc(func(o *options) { o.unmatchedTTL, o.unmatchedMax = ttl, maxMessages })
}
