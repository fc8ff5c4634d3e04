package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
	"github.com/eclipse/paho.golang/paho/store/file"
)

// Client is a long-running MQTT 5 connection. It is safe for concurrent use.
type Client struct {
	opts    options
	log     *slog.Logger
	events  *eventHub
	subs    *subStore
	streams streamSet

	mwMu   sync.Mutex
	mw     middlewares
	chains atomic.Pointer[chains]

	connected atomic.Bool
	connGen   atomic.Uint64 // incremented on every connection up

	// lifeMu serialises Start and Stop; run is the running instance (read
	// without the lock on the publish path).
	lifeMu sync.Mutex
	run    atomic.Pointer[instance]

	stateMu  sync.Mutex
	state    connState
	connCh   chan struct{} // closed while connected
	resolved []*url.URL

	// pool is set in multi-connection mode: the per-address clients.
	pool *connPool
	// parent is the multi-connection client a per-address client belongs to.
	parent *Client
}

// instance is one Start..Stop run.
type instance struct {
	ctx     context.Context
	cancel  context.CancelFunc
	cm      atomic.Pointer[autopaho.ConnectionManager] // set by Start or the first OnConnectionUp
	session *guardedSession
	queue   *offlineQueue
	wg      sync.WaitGroup
	first   chan error // result of the first connect attempt
	once    sync.Once
}

func (in *instance) manager() *autopaho.ConnectionManager { return in.cm.Load() }

type connState struct {
	address      string
	username     string
	clientID     string
	keepAlive    time.Duration
	conn         net.Conn
	creds        *ConnectCredentials
	attemptStart time.Time
	attempt      int
	// planned is the backoff drawn for attempt plannedFor when the previous
	// attempt failed, so the failure event can announce it.
	planned     time.Duration
	plannedFor  int
	connectedAt time.Time
	everUp      bool
	// sessionPresent is the CONNACK's flag of the current (or last)
	// connection.
	sessionPresent bool
	lostReason     error
}

// NewClient validates the options and returns a client; call Start to connect.
func NewClient(opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, op := range opts {
		if op != nil {
			op.apply(&o)
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	c := newClient(o)
	if o.multiConn {
		c.pool = &connPool{}
	}
	return c, nil
}

func newClient(o options) *Client {
	c := &Client{
		opts:   o,
		log:    o.logger.With("component", "client"),
		events: newEventHub(),
		subs:   newSubStore(),
		connCh: make(chan struct{}),
	}
	c.streams.ttl, c.streams.max = o.unmatchedTTL, o.unmatchedMax
	c.state.clientID = o.clientID
	c.state.username = o.username
	c.state.keepAlive = o.keepAlive
	c.chains.Store(c.mw.build(c))
	return c
}

// Info returns the current connection information (what events carry).
func (c *Client) Info() ConnectionInfo { return c.connInfo() }

func (c *Client) connInfo() ConnectionInfo {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return ConnectionInfo{
		ClientID:       c.state.clientID,
		Username:       c.state.username,
		KeepAlive:      c.state.keepAlive,
		Address:        c.state.address,
		CleanSession:   c.opts.cleanSession,
		SessionPresent: c.state.sessionPresent,
	}
}

func (c *Client) openSession() (*guardedSession, *offlineQueue, error) {
	onDrop := func(data []byte) {
		c.emit(Event{Type: EventOfflineMessageDiscarded, Size: len(data)})
	}
	if c.opts.persistDir == "" {
		q, err := openOfflineQueue("", c.opts.offlineSize, c.opts.offlinePolicy, onDrop)
		return guardSession(state.NewInMemory()), q, err
	}
	// The client and server stores and the queue need separate directories: two
	// paho file stores sharing one return phantom packet ids.
	cs, err := file.New(filepath.Join(c.opts.persistDir, "session", "client"), "c_", ".pkt")
	if err != nil {
		return nil, nil, fmt.Errorf("open session store: %w", err)
	}
	ss, err := file.New(filepath.Join(c.opts.persistDir, "session", "server"), "s_", ".pkt")
	if err != nil {
		return nil, nil, fmt.Errorf("open session store: %w", err)
	}
	q, err := openOfflineQueue(filepath.Join(c.opts.persistDir, "queue"), c.opts.offlineSize, c.opts.offlinePolicy, onDrop)
	if err != nil {
		return nil, nil, err
	}
	return guardSession(state.New(cs, ss)), q, nil
}

// Start connects in the background and returns after the first connect
// attempt. With auto-reconnect (the default) it returns nil even if that
// attempt failed: the client keeps trying (see IsConnected, WaitForConnection
// and the event stream). Without auto-reconnect a failed first attempt is
// returned and the client stops.
func (c *Client) Start() error {
	if c.pool != nil {
		return c.startMulti()
	}
	c.lifeMu.Lock()
	if c.run.Load() != nil {
		c.lifeMu.Unlock()
		return ErrAlreadyStarted
	}
	session, q, err := c.openSession()
	if err != nil {
		c.lifeMu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{ctx: ctx, cancel: cancel, session: session, queue: q, first: make(chan error, 1)}
	if c.opts.resolver != nil {
		in.wg.Add(1)
		go c.followResolver(in)
	}
	cm, err := autopaho.NewConnection(ctx, c.pahoConfig(in))
	if err != nil {
		cancel()
		in.wg.Wait()
		_ = session.Close()
		c.lifeMu.Unlock()
		return fmt.Errorf("client: start: %w", err)
	}
	in.cm.Store(cm)
	c.run.Store(in)
	c.lifeMu.Unlock()

	timer := time.NewTimer(c.opts.connectTimeout + c.opts.credTimeout)
	defer timer.Stop()
	select {
	case err = <-in.first:
	case <-in.ctx.Done():
		select {
		case err = <-in.first: // the failed attempt cancelled the run
		default:
			return ErrNotStarted // Stop was called meanwhile
		}
	case <-timer.C:
		err = fmt.Errorf("%w: first connect attempt timed out", ErrNotConnected)
	}
	if err != nil && !c.opts.autoReconnect {
		c.Stop()
		return err
	}
	return nil
}

func (c *Client) pahoConfig(in *instance) autopaho.ClientConfig {
	o := c.opts
	cfg := autopaho.ClientConfig{
		// One placeholder URL: attemptConnection picks the real address(es).
		ServerUrls:                    []*url.URL{{Scheme: "courier", Host: "broker"}},
		KeepAlive:                     uint16(o.keepAlive / time.Second),
		CleanStartOnInitialConnection: o.cleanSession,
		SessionExpiryInterval:         uint32(o.sessionExpiry / time.Second),
		ReconnectBackoff:              c.reconnectDelay,
		ConnectTimeout:                o.connectTimeout,
		Queue:                         in.queue,
		AttemptConnection:             c.attemptConnection,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ca *paho.Connack) {
			in.cm.Store(cm)
			c.onConnectionUp(in, ca)
		},
		OnConnectionDown:     func() bool { return c.onConnectionDown(in) },
		OnConnectError:       func(err error) { c.onConnectError(in, err) },
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) { return c.buildConnect(in, cp) },
		ClientConfig: paho.ClientConfig{
			ClientID:                   o.clientID,
			Session:                    in.session,
			PingHandler:                &pinger{c: c, inner: paho.NewDefaultPinger()},
			PacketTimeout:              time.Hour, // every request carries its own deadline
			EnableManualAcknowledgment: o.manualAck,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) { return c.onPublishReceived(in, pr) }},
			OnClientError: func(err error) {
				c.stateMu.Lock()
				if c.state.lostReason == nil {
					c.state.lostReason = err
				}
				c.stateMu.Unlock()
			},
			OnServerDisconnect: func(d *paho.Disconnect) {
				c.stateMu.Lock()
				if c.state.lostReason == nil {
					c.state.lostReason = &ReasonCodeError{Op: "disconnect", Code: d.ReasonCode}
				}
				c.stateMu.Unlock()
			},
		},
	}
	if w := o.will; w != nil {
		cfg.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: w.Payload, QoS: byte(w.QoS), Retain: w.Retained}
		delay := uint32(w.Delay / time.Second)
		cfg.WillProperties = &paho.WillProperties{WillDelayInterval: &delay}
	}
	return cfg
}

func (c *Client) reconnectDelay(attempt int) time.Duration {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.state.attempt = attempt + 1
	if attempt <= 0 {
		return 0
	}
	if c.state.plannedFor == attempt {
		c.state.plannedFor = 0
		return c.state.planned
	}
	return c.opts.backoff(attempt)
}

// buildConnect runs before every connect attempt: it fetches credentials and
// sets the MQTT 5 properties.
func (c *Client) buildConnect(in *instance, cp *paho.Connect) (*paho.Connect, error) {
	c.stateMu.Lock()
	c.state.attemptStart = time.Now()
	attempt := c.state.attempt
	c.stateMu.Unlock()
	c.emit(Event{Type: EventConnectAttempt, Attempt: attempt})

	o := c.opts
	username, password := o.username, o.password
	var creds *ConnectCredentials
	switch {
	case o.tokenAPI != nil || o.credFetcher != nil:
		start := time.Now()
		c.emit(Event{Type: EventAuthenticatorAttempt})
		ctx, cancel := context.WithTimeout(in.ctx, o.credTimeout)
		var err error
		if o.tokenAPI != nil {
			creds, err = o.tokenAPI.Credentials(ctx)
		} else {
			var cr *Credential
			if cr, err = o.credFetcher.Credentials(ctx); err == nil && cr != nil {
				creds = &ConnectCredentials{Username: cr.Username, Password: cr.Password}
			} else if err == nil {
				err = errors.New("client: credential fetcher returned nil")
			}
		}
		cancel()
		if err != nil {
			c.emit(Event{Type: EventAuthenticatorError, Err: err, Duration: time.Since(start)})
			return nil, fmt.Errorf("fetch credentials: %w", err)
		}
		c.emit(Event{Type: EventAuthenticatorSuccess, Duration: time.Since(start)})
		username, password = creds.Username, creds.Password
	}
	cp.Username, cp.UsernameFlag = username, username != ""
	cp.Password, cp.PasswordFlag = []byte(password), password != ""
	keepAlive := o.keepAlive
	if creds != nil {
		if creds.ClientID != "" && !o.clientIDSet {
			cp.ClientID = creds.ClientID
		}
		if creds.KeepAlive > 0 {
			keepAlive = creds.KeepAlive
			cp.KeepAlive = uint16(keepAlive / time.Second)
		}
	}
	expiry := uint32(o.sessionExpiry / time.Second)
	if creds != nil && creds.CleanSession != nil && *creds.CleanSession {
		// The token API's cleanSession is MQTT 3.1.1's clean session: a
		// fresh session that also ends with the connection.
		cp.CleanStart = true
		expiry = 0
	}
	if o.cleanSession {
		cp.CleanStart = true // every connection, as in MQTT 3.1.1
	}
	if cp.Properties == nil {
		cp.Properties = &paho.ConnectProperties{}
	}
	// mochi strips user properties from every packet unless the client asks
	// for problem information.
	cp.Properties.RequestProblemInfo = true
	cp.Properties.SessionExpiryInterval = &expiry

	c.stateMu.Lock()
	c.state.creds = creds
	c.state.username = username
	c.state.clientID = cp.ClientID
	c.state.keepAlive = keepAlive
	c.stateMu.Unlock()
	return cp, nil
}

func (c *Client) onConnectionUp(in *instance, ca *paho.Connack) {
	c.stateMu.Lock()
	took := time.Since(c.state.attemptStart)
	reconnect := c.state.everUp
	c.state.everUp = true
	c.state.connectedAt = time.Now()
	c.state.lostReason = nil
	c.state.sessionPresent = ca.SessionPresent
	if ca.Properties != nil && ca.Properties.AssignedClientID != "" {
		// An MQTT 5 broker names a client that connected without an id.
		c.state.clientID = ca.Properties.AssignedClientID
	}
	c.connGen.Add(1)
	c.connected.Store(true)
	close(c.connCh)
	c.stateMu.Unlock()
	c.log.Info("connected", "remote", c.connInfo().Address, "session_present", ca.SessionPresent)
	c.emit(Event{Type: EventConnectSuccess, Duration: took})
	if reconnect {
		c.emit(Event{Type: EventReconnect})
	}
	in.once.Do(func() { in.first <- nil })
	if c.parent != nil {
		c.parent.refreshConnected()
	}

	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		c.resubscribe(in)
		if c.opts.onConnect != nil {
			c.opts.onConnect(c)
		}
		if reconnect && c.opts.onReconnect != nil {
			c.opts.onReconnect(c)
		}
	}()
}

func (c *Client) onConnectionDown(in *instance) bool {
	c.stateMu.Lock()
	reason := c.state.lostReason
	up := time.Since(c.state.connectedAt)
	c.state.conn = nil
	c.connected.Store(false)
	c.connCh = make(chan struct{})
	c.stateMu.Unlock()
	if c.parent != nil {
		c.parent.refreshConnected()
	}
	if in.ctx.Err() != nil {
		return false
	}
	if reason == nil {
		reason = ErrNotConnected
	}
	c.log.Warn("connection lost", "err", reason)
	c.emit(Event{Type: EventConnectionLost, Err: reason, Duration: up})
	if c.opts.onConnectionLost != nil {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			c.opts.onConnectionLost(reason)
		}()
	}
	return c.opts.autoReconnect
}

func (c *Client) onConnectError(in *instance, err error) {
	if in.ctx.Err() != nil {
		return
	}
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		err = &ReasonCodeError{Op: "connect", Code: ce.ReasonCode, Reason: ce.Reason}
		// Rejected credentials: force a fresh token on the next attempt.
		if (ce.ReasonCode == 0x86 || ce.ReasonCode == 0x87) && c.opts.tokenAPI != nil {
			c.stateMu.Lock()
			creds := c.state.creds
			c.stateMu.Unlock()
			c.opts.tokenAPI.Invalidate(creds)
		}
	}
	c.stateMu.Lock()
	took := time.Since(c.state.attemptStart)
	attempt := c.state.attempt
	var next time.Duration
	if c.opts.autoReconnect {
		// autopaho asks for attempt's backoff next; draw it now to announce it.
		next = c.opts.backoff(attempt)
		c.state.planned, c.state.plannedFor = next, attempt
	}
	c.stateMu.Unlock()
	c.log.Warn("connect failed", "attempt", attempt, "retry_in", next, "err", err)
	c.emit(Event{Type: EventConnectFailure, Err: err, Duration: took, Attempt: attempt, NextRetry: next})
	in.once.Do(func() { in.first <- err })
	if !c.opts.autoReconnect {
		in.cancel()
	}
}

// Stop disconnects (sending DISCONNECT if connected) and stops the client,
// waiting up to the graceful shutdown period. Buffered and in-flight QoS 1/2
// messages stay in the session store for the next Start. Stop is idempotent.
//
// Stop must not be called from a message handler or an On* callback.
func (c *Client) Stop() {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	in := c.run.Swap(nil)
	if in == nil {
		return
	}
	if c.pool != nil {
		c.stopMulti(in)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.gracePeriod)
	defer cancel()
	_ = in.manager().Disconnect(ctx)
	in.cancel()
	in.wg.Wait()
	_ = in.session.Close()
	c.stateMu.Lock()
	if c.connected.Load() {
		c.connected.Store(false)
		c.connCh = make(chan struct{})
	}
	c.state.conn = nil
	c.stateMu.Unlock()
	if c.parent != nil {
		c.parent.refreshConnected()
	}
	c.emit(Event{Type: EventDisconnect})
}

// Run starts the client, blocks until ctx ends, then stops it.
func (c *Client) Run(ctx context.Context) error {
	if err := c.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	c.Stop()
	return nil
}

// IsConnected reports whether the connection is up.
func (c *Client) IsConnected() bool { return c.connected.Load() }

// AwaitConnection blocks until the client is connected or ctx ends.
func (c *Client) AwaitConnection(ctx context.Context) error {
	c.stateMu.Lock()
	ch := c.connCh
	c.stateMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ConnectionInformer is what WaitForConnection needs.
type ConnectionInformer interface{ IsConnected() bool }

// WaitForConnection waits up to waitFor for c to connect, checking every
// tick (a *Client is waited on without polling). It reports whether c is connected.
func WaitForConnection(c ConnectionInformer, waitFor, tick time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if cl, ok := c.(*Client); ok {
		return cl.AwaitConnection(ctx) == nil
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for !c.IsConnected() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return c.IsConnected()
		}
	}
	return true
}

// DisconnectAndClearState (Courier's destroy) stops the client and drops the
// persisted session state, the offline buffer and the subscription store.
func (c *Client) DisconnectAndClearState() error {
	c.Stop()
	c.subs.clear()
	if c.opts.persistDir == "" {
		return nil
	}
	var errs []error
	for _, d := range []string{"session", "queue"} {
		if err := os.RemoveAll(filepath.Join(c.opts.persistDir, d)); err != nil {
			errs = append(errs, fmt.Errorf("clear %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Client) current() *instance { return c.run.Load() }

func (c *Client) followResolver(in *instance) {
	defer in.wg.Done()
	r := c.opts.resolver
	for {
		select {
		case <-in.ctx.Done():
			return
		case <-r.Done():
			return
		case list, ok := <-r.UpdateChan():
			if !ok {
				return
			}
			urls := make([]*url.URL, 0, len(list))
			for _, a := range list {
				urls = append(urls, &url.URL{Scheme: "mqtt", Host: a.String()})
			}
			c.stateMu.Lock()
			c.resolved = urls
			c.stateMu.Unlock()
		}
	}
}
