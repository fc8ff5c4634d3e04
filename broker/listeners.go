package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener is our implementation of mochi's listeners.Listener. Unlike
// mochi's own listeners it binds in bind (so Start can report every bind
// error before anything is served), tracks every connection it accepted so
// Shutdown can wait for them and close stragglers, and runs each connection
// under a recover guard: a panic while handling one connection (upstream
// mochi #501: a truncated MQTT 5 SUBSCRIBE) closes that connection only.
type listener struct {
	cfg    ListenerConfig
	b      *Broker
	ln     net.Listener
	ws     *wsServer // non-nil for ws listeners
	accept sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newListener(b *Broker, cfg ListenerConfig) *listener {
	return &listener{cfg: cfg, b: b, conns: map[net.Conn]struct{}{}}
}

// bind opens the network address.
func (l *listener) bind() error {
	tlsCfg, err := l.tlsConfig()
	if err != nil {
		return err
	}
	network := "tcp"
	if l.cfg.Type == ListenerUnix {
		network = "unix"
		// A stale socket file from a crashed run would make Listen fail.
		if fi, err := os.Stat(l.cfg.Addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(l.cfg.Addr)
		}
	}
	ln, err := net.Listen(network, l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.name(), err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	l.ln = ln
	// Counted here, not in Serve: mochi starts Serve on a goroutine of its
	// own, and the Add must happen before stopAccepting's Wait.
	l.accept.Add(1)
	if l.cfg.Type == ListenerWebSocket {
		l.ws = newWSServer(l)
	}
	return nil
}

func (l *listener) tlsConfig() (*tls.Config, error) {
	switch {
	case l.cfg.TLSConfig != nil:
		return l.cfg.TLSConfig.Clone(), nil
	case l.cfg.CertFile != "":
		cert, err := tls.LoadX509KeyPair(l.cfg.CertFile, l.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("listener %s: load certificate: %w", l.cfg.name(), err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case l.cfg.Type == ListenerTLS:
		return nil, fmt.Errorf("listener %s: tls needs a certificate", l.cfg.name())
	}
	return nil, nil
}

// Init implements listeners.Listener; binding already happened in bind.
func (l *listener) Init(*slog.Logger) error { return nil }

// ID implements listeners.Listener.
func (l *listener) ID() string { return l.cfg.name() }

// Address implements listeners.Listener: the bound address.
func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.cfg.Addr
}

// Protocol implements listeners.Listener.
func (l *listener) Protocol() string { return l.cfg.Type }

// Serve implements listeners.Listener. mochi runs it on its own goroutine.
func (l *listener) Serve(establish listeners.EstablishFn) {
	defer l.accept.Done()
	if l.ws != nil {
		l.ws.serve(establish)
		return
	}
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.handle(l.b.validating(l.b.deadlines(conn)), establish)
	}
}

// deadlines wraps an accepted connection with the keepalive slack and the
// write timeout.
func (b *Broker) deadlines(c net.Conn) *deadlineConn {
	return &deadlineConn{Conn: c, writeTimeout: b.cfg.Limits.WriteTimeout}
}

// handle runs one connection on its own goroutine, tracked and guarded.
func (l *listener) handle(conn net.Conn, establish listeners.EstablishFn) {
	if !l.track(conn) {
		_ = conn.Close()
		return
	}
	go l.serveConn(conn, establish)
}

// serveConn runs mochi's connection handling for a tracked conn on the
// calling goroutine with a recover guard, and untracks it at the end.
func (l *listener) serveConn(conn net.Conn, establish listeners.EstablishFn) {
	defer l.untrack(conn)
	defer func() {
		if r := recover(); r != nil {
			l.b.recoverConnection(l.cfg.name(), conn, r)
		}
	}()
	err := establish(l.cfg.name(), conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		l.b.log.Debug("connection ended", "listener", l.cfg.name(), "remote", conn.RemoteAddr().String(), "err", err)
	}
}

// track registers a connection with the listener and with the broker's
// connection WaitGroup. It refuses once the listener is closed; because both
// happen under l.mu, every Add happens before Shutdown's Wait.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	l.b.conns.Add(1)
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
	l.b.conns.Done()
}

// stopAccepting closes the network listener and waits for the accept loop.
// Connections already accepted keep running.
func (l *listener) stopAccepting(ctx context.Context) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.ws != nil {
		l.ws.close(ctx)
	} else if l.ln != nil {
		_ = l.ln.Close()
	}
	l.accept.Wait()
	if l.cfg.Type == ListenerUnix {
		_ = os.Remove(l.cfg.Addr)
	}
}

// closeConns closes every connection still open on this listener.
func (l *listener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.Close()
	}
}

// Close implements listeners.Listener. mochi calls it from Server.Close, after
// our own shutdown sequence has already stopped the listener.
func (l *listener) Close(closeClients listeners.CloseFn) {
	closeClients(l.cfg.name())
}
