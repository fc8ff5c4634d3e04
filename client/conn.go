package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/internal/wsconn"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
	"github.com/gorilla/websocket"
)

// dialTargets lists the broker URLs for one connect attempt, in order.
func (c *Client) dialTargets() []*url.URL {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if a := c.state.creds.address(); a != "" {
		scheme := "mqtt"
		if c.opts.tlsConfig != nil {
			scheme = "tls"
		}
		return []*url.URL{{Scheme: scheme, Host: a}}
	}
	if c.opts.resolver != nil {
		return c.resolved
	}
	return c.opts.addresses
}

// attemptConnection is autopaho's AttemptConnection: it tries every target in
// order (fallback) and returns the first connection.
func (c *Client) attemptConnection(ctx context.Context, _ autopaho.ClientConfig, _ *url.URL) (net.Conn, error) {
	targets := c.dialTargets()
	if len(targets) == 0 {
		return nil, ErrNoAddress
	}
	var errs []error
	for _, u := range targets {
		addr := displayAddress(u)
		c.emit(Event{Type: EventSocketConnectAttempt, Topic: addr})
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, c.opts.connectTimeout)
		conn, err := c.dial(dctx, u)
		cancel()
		if err != nil {
			c.emit(Event{Type: EventSocketConnectFailure, Topic: addr, Err: err, Duration: time.Since(start)})
		} else {
			c.emit(Event{Type: EventSocketConnectSuccess, Topic: addr, Duration: time.Since(start)})
		}
		if err == nil {
			// paho writes a packet with one call when the conn is a *net.TCPConn
			// (writev, safe for concurrent use); anything else needs a lock.
			if _, raw := conn.(*net.TCPConn); !raw {
				if _, locked := conn.(sync.Locker); !locked {
					conn = packets.NewThreadSafeConn(conn)
				}
			}
			c.stateMu.Lock()
			c.state.conn = conn
			c.state.address = displayAddress(u)
			c.stateMu.Unlock()
			return conn, nil
		}
		c.log.Debug("dial failed", "remote", displayAddress(u), "err", err)
		errs = append(errs, fmt.Errorf("dial %s: %w", displayAddress(u), err))
	}
	return nil, errors.Join(errs...)
}

func displayAddress(u *url.URL) string {
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
		return u.String()
	}
	return u.Host
}

func (c *Client) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		conn, err := c.opts.dialer.DialContext(ctx, "tcp", u.Host)
		if err != nil || c.opts.tlsConfig == nil {
			return conn, err
		}
		return c.tlsHandshake(ctx, conn, u)
	case "tls", "ssl", "mqtts":
		conn, err := c.opts.dialer.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, err
		}
		return c.tlsHandshake(ctx, conn, u)
	case "ws", "wss":
		d := websocket.Dialer{
			NetDialContext:   c.opts.dialer.DialContext,
			Subprotocols:     []string{"mqtt"},
			HandshakeTimeout: c.opts.connectTimeout,
		}
		if strings.EqualFold(u.Scheme, "wss") {
			d.TLSClientConfig = c.tlsConfigFor(u)
		}
		ws, resp, err := d.DialContext(ctx, u.String(), c.opts.wsHeader)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			return nil, err
		}
		return wsconn.New(ws), nil
	}
	return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
}

func (c *Client) tlsConfigFor(u *url.URL) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.opts.tlsConfig != nil {
		cfg = c.opts.tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	return cfg
}

func (c *Client) tlsHandshake(ctx context.Context, conn net.Conn, u *url.URL) (net.Conn, error) {
	start := time.Now()
	tc := tls.Client(conn, c.tlsConfigFor(u))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		c.emit(Event{Type: EventSSLHandshakeFailure, Topic: u.Host, Err: err, Duration: time.Since(start)})
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	c.emit(Event{Type: EventSSLHandshakeSuccess, Topic: u.Host, Duration: time.Since(start)})
	return tc, nil
}

// watch starts the ack watchdog for one request on the current connection.
// The returned stop function must be called when the reply arrives (or the
// request fails). If the timeout passes first, the connection is closed, which
// makes autopaho reconnect at once.
func (c *Client) watch(op, topic string) (stop func()) {
	if c.opts.ackTimeout <= 0 {
		return func() {}
	}
	c.stateMu.Lock()
	conn := c.state.conn
	c.stateMu.Unlock()
	if conn == nil {
		return func() {}
	}
	var fired atomic.Bool
	t := time.AfterFunc(c.opts.ackTimeout, func() {
		fired.Store(true)
		c.log.Warn("no reply within ack timeout, closing connection", "op", op, "topic", topic, "timeout", c.opts.ackTimeout)
		c.emit(Event{Type: EventInboundInactivity, Topic: topic, Duration: c.opts.ackTimeout, Err: ErrAckTimeout})
		c.stateMu.Lock()
		c.state.lostReason = ErrAckTimeout
		c.stateMu.Unlock()
		_ = conn.Close()
	})
	return func() { t.Stop() }
}

// pinger wraps paho's DefaultPinger to emit ping events.
type pinger struct {
	c        *Client
	inner    *paho.DefaultPinger
	lastPing atomic.Int64
}

func (p *pinger) Run(ctx context.Context, conn net.Conn, keepAlive uint16) error {
	err := p.inner.Run(ctx, &pingConn{Conn: conn, p: p}, keepAlive)
	if err != nil {
		p.c.emit(Event{Type: EventPingFailure, Err: err})
	}
	return err
}

func (p *pinger) PacketSent()           { p.inner.PacketSent() }
func (p *pinger) PacketReceived()       { p.inner.PacketReceived() }
func (p *pinger) SetDebug(l log.Logger) { p.inner.SetDebug(l) }

func (p *pinger) PingResp() {
	p.inner.PingResp()
	var d time.Duration
	if t := p.lastPing.Load(); t != 0 {
		d = time.Since(time.Unix(0, t))
	}
	p.c.emit(Event{Type: EventPingSuccess, Duration: d})
}

// pingConn is the connection the pinger writes PINGREQs to.
type pingConn struct {
	net.Conn
	p *pinger
}

func (pc *pingConn) Lock() {
	if l, ok := pc.Conn.(sync.Locker); ok {
		l.Lock()
	}
}

func (pc *pingConn) Unlock() {
	if l, ok := pc.Conn.(sync.Locker); ok {
		l.Unlock()
	}
}

func (pc *pingConn) Write(b []byte) (int, error) {
	pc.p.lastPing.Store(time.Now().UnixNano())
	pc.p.c.emit(Event{Type: EventPingInitiated})
	return pc.Conn.Write(b)
}
