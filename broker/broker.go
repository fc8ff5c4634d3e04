package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/hooks/store"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Broker is an embeddable MQTT broker speaking MQTT 3.1, 3.1.1 and 5 over
// TCP, TLS, WebSocket and unix sockets. Create one with New, run it with
// Start, stop it with Shutdown. Its methods are safe for concurrent use.
type Broker struct {
	cfg  Config
	opts options
	log  *slog.Logger
	srv  *mqtt.Server
	mlog *mochiLogHandler

	metrics  *metrics
	core     *coreHook
	ready    atomic.Bool
	stopping atomic.Bool    // set when Shutdown starts disconnecting clients
	conns    sync.WaitGroup // connection goroutines of every listener

	mu        sync.Mutex
	state     int
	listeners []*listener
	ops       *opsServer
	opsDone   chan struct{}
	tokenAPI  *tokenAPIServer
	closeFn   func() error // closes the store
	store     *store.Store // the durable store, nil when off (store.go)

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error

	obsMu     sync.Mutex
	obsClosed bool
	observers atomic.Pointer[[]*Observer]
}

// New returns a broker for cfg. It validates cfg and copies it; nothing is
// opened or bound until Start.
func New(cfg Config, opts ...Option) (*Broker, error) {
	cfg.Listeners = append([]ListenerConfig(nil), cfg.Listeners...)
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.auth && cfg.AllowAnonymous {
		// An auth hook from code turns anonymous access off.
		cfg.AllowAnonymous = false
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:          cfg,
		opts:         o,
		log:          o.logger.With("component", "broker"),
		shutdownDone: make(chan struct{}),
	}
	empty := []*Observer{}
	b.observers.Store(&empty)

	b.mlog = newMochiLogHandler(o.logger.Handler())
	b.srv = mqtt.New(&mqtt.Options{
		Capabilities:           b.capabilities(),
		Logger:                 slog.New(b.mlog),
		SysTopicResendInterval: 10,
	})
	b.metrics = newMetrics(func() *system.Info { return b.srv.Info })
	return b, nil
}

func (b *Broker) capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	l := b.cfg.Limits
	c.MaximumPacketSize = l.MaxPacketSize
	c.MaximumClients = math.MaxInt64
	if l.MaxClients > 0 {
		c.MaximumClients = l.MaxClients
	}
	c.MaximumClientWritesPending = l.MaxPendingWrites
	c.MaximumInflight = l.MaxOfflineQueue
	c.ReceiveMaximum = mochiReceiveMaximum // the validating layer enforces l.ReceiveMaximum
	c.TopicAliasMaximum = topicAliasMaximum
	c.MaximumSessionExpiryInterval = uint32(l.MaxSessionExpiry / time.Second)
	c.MaximumMessageExpiryInterval = int64(l.MaxMessageExpiry / time.Second)
	c.MinimumProtocolVersion = 3
	return c
}

// Start opens the store, binds every listener and starts serving. It returns
// once every listener is bound, so Addr reports real ports. It returns
// ErrServerClosed after Shutdown and ErrAlreadyStarted on a second call. If
// Start fails, everything it opened is closed again and the broker is
// closed: create a new one to retry.
func (b *Broker) Start(ctx context.Context) (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateStarted:
		return ErrAlreadyStarted
	case stateClosed:
		return ErrServerClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.state = stateStarted
	defer func() {
		if err != nil {
			b.abortStart()
		}
	}()

	storeHooks, closeFn, err := b.openStore()
	if err != nil {
		return err
	}
	b.closeFn = closeFn
	b.core = newCoreHook(b)
	out := newOutboundHook(b.core)
	hooks := append([]hookEntry{{b.core, nil}, {newLifecycleHook(b), nil}, {out, nil}}, storeHooks...)
	hooks = append(hooks, hookEntry{&resendHook{out: out}, nil}) // after the store's fixes (resend.go)
	hooks = append(hooks, hookEntry{&backpressureHook{limit: b.backpressureLimit()}, nil})
	authHooks, err := b.authHooks()
	if err != nil {
		return err
	}
	hooks = append(hooks, authHooks...)
	if len(authHooks) == 0 && !b.opts.auth && b.cfg.AllowAnonymous {
		b.log.Warn("no authentication configured: anonymous clients are allowed, on loopback listeners only unless allow_anonymous_network is set")
		hooks = append(hooks, hookEntry{&anonymousHook{}, nil})
	}
	hooks = append(hooks, b.opts.hooks...)
	for _, h := range hooks {
		if err := b.srv.AddHook(h.hook, h.config); err != nil {
			return fmt.Errorf("add hook %s: %w", h.hook.ID(), err)
		}
	}

	for _, lc := range b.cfg.Listeners {
		l := newListener(b, lc)
		if err := l.bind(); err != nil {
			return err
		}
		b.listeners = append(b.listeners, l)
		if err := b.srv.AddListener(l); err != nil {
			return fmt.Errorf("add listener %s: %w", lc.name(), err)
		}
	}
	if b.cfg.Ops.Addr != "" {
		ln, err := net.Listen("tcp", b.cfg.Ops.Addr)
		if err != nil {
			return fmt.Errorf("listen ops %s: %w", b.cfg.Ops.Addr, err)
		}
		b.ops = b.newOpsServer(ln)
		b.opsDone = make(chan struct{})
		go func() {
			defer close(b.opsDone)
			_ = b.ops.srv.Serve(ln)
		}()
	}

	if b.cfg.TokenAPI.Addr != "" {
		if b.tokenAPI, err = b.startTokenAPI(); err != nil {
			return err
		}
	}

	// Serve restores the store, then starts every listener's accept loop.
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	b.ready.Store(true)
	b.log.Info("broker started", "listeners", b.addrList())
	return nil
}

// abortStart undoes a failed Start. Called with b.mu held.
func (b *Broker) abortStart() {
	b.state = stateClosed
	for _, l := range b.listeners {
		if l.ln != nil {
			_ = l.ln.Close()
		}
	}
	if b.ops != nil {
		_ = b.ops.srv.Close()
		<-b.opsDone
	}
	if b.tokenAPI != nil {
		_ = b.tokenAPI.srv.Close()
		<-b.tokenAPI.done
	}
	if b.closeFn != nil {
		_ = b.closeFn()
	}
	b.closeObservers()
	b.shutdownOnce.Do(func() { close(b.shutdownDone) })
}

func (b *Broker) addrList() []string {
	var out []string
	for _, l := range b.listeners {
		out = append(out, l.cfg.name()+"="+l.Address())
	}
	return out
}

// Addr returns the bound address of the named listener ("ops" names the ops
// listener, "token-api" the token API listener), or "" when there is no such listener or the broker is not
// started. For unix listeners it is the socket path.
func (b *Broker) Addr(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "ops" && b.ops != nil {
		return b.ops.ln.Addr().String()
	}
	if name == "token-api" && b.tokenAPI != nil {
		return b.tokenAPI.ln.Addr().String()
	}
	for _, l := range b.listeners {
		if l.cfg.name() == name && l.ln != nil {
			return l.Address()
		}
	}
	return ""
}

// Ready reports whether the broker has restored its store and bound every
// listener, and is not shutting down.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Shutdown stops the broker gracefully, in order: stop accepting, disconnect
// every client (MQTT 5 clients get DISCONNECT 0x8B; no Will is published, as
// a shutdown is not a client failure), wait for connection handling to end,
// stop mochi and its housekeeping loop, close the ops listener, then close
// the store. If ctx ends first, remaining connections are closed forcibly,
// teardown completes, and ctx's error is returned. Shutdown is idempotent:
// later calls wait for the first to finish and return its result. Calling
// Shutdown on a broker that was never started just marks it closed.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() {
		go func() {
			defer close(b.shutdownDone)
			b.shutdownErr = b.shutdown(ctx)
		}()
	})
	select {
	case <-b.shutdownDone:
		return b.shutdownErr
	case <-ctx.Done():
		// The first call still completes its ordered teardown in the background.
		<-b.shutdownDone
		return errors.Join(ctx.Err(), b.shutdownErr)
	}
}

func (b *Broker) shutdown(ctx context.Context) error {
	b.mu.Lock()
	prev := b.state
	b.state = stateClosed
	b.mu.Unlock()
	if prev != stateStarted {
		b.closeObservers()
		return nil
	}
	b.ready.Store(false)
	b.log.Info("broker shutting down")

	for _, l := range b.listeners {
		l.stopAccepting(ctx)
	}

	// A graceful shutdown is not a client failure: with stopping set, the
	// lifecycle hook publishes no Will for the connections we close.
	b.stopping.Store(true)
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		if !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
	for _, l := range b.listeners {
		l.closeConns() // connections still in their CONNECT handshake
	}

	var errs []error
	if err := waitCtx(ctx, b.conns.Wait); err != nil {
		errs = append(errs, fmt.Errorf("wait for connections: %w", err))
	}

	if b.core != nil {
		b.core.exp.stop() // expiry watchers: nothing is connecting any more
	}
	// mochi's Close stops its event loop, calls every hook's Stop, and closes
	// listeners (already stopped). It does not wait for the loop to return.
	_ = b.srv.Close()
	select {
	case <-b.mlog.halted:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for event loop: %w", ctx.Err()))
	}

	if b.tokenAPI != nil {
		shutdownHTTP(ctx, b.tokenAPI.srv)
		<-b.tokenAPI.done
	}
	if b.ops != nil {
		shutdownHTTP(ctx, b.ops.srv)
		<-b.opsDone
	}
	if b.closeFn != nil {
		if err := b.closeFn(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	b.closeObservers()
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}

// shutdownHTTP stops an HTTP server gracefully for up to 2 s, then forcibly.
func shutdownHTTP(ctx context.Context, srv *http.Server) {
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(octx); err != nil {
		_ = srv.Close()
	}
}

// waitCtx runs wait and returns nil when it returns, or ctx's error first.
func waitCtx(ctx context.Context, wait func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recoverConnection cleans up after a panic while handling conn: mochi has
// already stopped the client (attachClient defers Stop), but its session is
// still registered. The connection is closed, counted, logged and reported;
// a clean session is removed as on any disconnect. The Will is not published.
func (b *Broker) recoverConnection(listener string, conn net.Conn, r any) {
	_ = conn.Close()
	b.metrics.panics.Inc()
	remote := conn.RemoteAddr().String()
	b.log.Error("connection handler panicked; connection closed", "listener", listener, "remote", remote,
		"err", fmt.Sprint(r), "stack", string(debug.Stack()))
	ev := Event{Kind: EventConnectionPanic, Remote: remote, Listener: listener, Reason: fmt.Sprint(r)}
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Conn != conn {
			continue
		}
		ev.ClientID, ev.Username, ev.ProtocolVersion = cl.ID, string(cl.Properties.Username), cl.Properties.ProtocolVersion
		cl.Stop(packets.ErrMalformedPacket)
		clean := (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0) ||
			(cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean)
		if clean && !cl.IsTakenOver() {
			cl.ClearInflights()
			b.srv.UnsubscribeClient(cl)
			b.srv.Clients.Delete(cl.ID)
		}
	}
	b.emit(ev)
}
