// Package brokertest runs a real courier broker inside tests, as
// net/http/httptest does for HTTP servers: on 127.0.0.1 with port 0, with its
// store in t.TempDir(), shut down in t.Cleanup.
//
//	srv := brokertest.Start(t)
//	c := dial(srv.TCPAddr) // or srv.WSURL
//	...
//	srv.Restart(t) // graceful restart on the same addresses and data dir
package brokertest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
)

// Server is a running test broker.
type Server struct {
	// Broker is the broker currently running (replaced by Restart).
	Broker *broker.Broker
	// TCPAddr is host:port of the MQTT TCP listener.
	TCPAddr string
	// WSURL is ws://host:port/mqtt of the WebSocket listener.
	WSURL string
	// OpsURL is http://host:port of the ops listener (/metrics, /healthz).
	OpsURL string
	// DataDir is the store's directory, kept across Restart; empty when the
	// store is off.
	DataDir string

	cfg  broker.Config
	opts []broker.Option
}

// Option adjusts a test broker.
type Option func(*Server)

// WithConfig lets the test change the broker's configuration before start.
// Listener addresses on 127.0.0.1:0 are filled in by default.
func WithConfig(f func(*broker.Config)) Option { return func(s *Server) { f(&s.cfg) } }

// WithOptions passes broker options (loggers, hooks) to every start.
func WithOptions(opts ...broker.Option) Option {
	return func(s *Server) { s.opts = append(s.opts, opts...) }
}

// WithDataDir uses dir as the store directory instead of a new t.TempDir(),
// e.g. to open a second broker on the data of a first one.
func WithDataDir(dir string) Option { return func(s *Server) { s.cfg.DataDir = dir } }

// WithoutStore runs the broker without persistence.
func WithoutStore() Option { return func(s *Server) { s.cfg.DataDir = "" } }

// Config returns the default test configuration: TCP and WebSocket on
// 127.0.0.1:0, the ops listener on 127.0.0.1:0, a store in dataDir, anonymous
// clients allowed and a 5 s keepalive floor.
func Config(dataDir string) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{
		{Name: "tcp", Type: broker.ListenerTCP, Addr: "127.0.0.1:0"},
		{Name: "ws", Type: broker.ListenerWebSocket, Addr: "127.0.0.1:0", Path: "/mqtt"},
	}
	cfg.Ops.Addr = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.Limits.KeepaliveFloor = 5 * time.Second
	return cfg
}

// Start starts a broker and registers its shutdown with t.Cleanup. It fails
// the test if the broker does not start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{cfg: Config(t.TempDir())}
	for _, o := range opts {
		o(s)
	}
	s.DataDir = s.cfg.DataDir
	s.start(t)
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	b, err := broker.New(s.cfg, s.opts...)
	if err != nil {
		t.Fatalf("brokertest: new broker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatalf("brokertest: start broker: %v", err)
	}
	s.Broker = b
	// Pin the bound ports so Restart comes back on the same addresses.
	for i, l := range s.cfg.Listeners {
		name := l.Name
		if name == "" {
			name = l.Type
		}
		s.cfg.Listeners[i].Addr = b.Addr(name)
		switch l.Type {
		case broker.ListenerTCP:
			if s.TCPAddr == "" {
				s.TCPAddr = b.Addr(name)
			}
		case broker.ListenerWebSocket:
			if s.WSURL == "" {
				path := l.Path
				if path == "" {
					path = "/mqtt"
				}
				s.WSURL = "ws://" + b.Addr(name) + path
			}
		}
	}
	if a := b.Addr("ops"); a != "" {
		s.cfg.Ops.Addr = a
		s.OpsURL = "http://" + a
	}
}

func (s *Server) shutdown(t testing.TB) {
	t.Helper()
	if s.Broker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Broker.Shutdown(ctx); err != nil {
		t.Errorf("brokertest: shutdown: %v", err)
	}
}

// Stop shuts the broker down gracefully, keeping its addresses and data dir
// so Restart can bring it back. Clients see their connections close.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.shutdown(t)
}

// Restart stops the broker if it runs, then starts a new one on the same
// addresses and data dir.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.shutdown(t)
	s.start(t)
}

// Dial opens a raw TCP connection to the broker's MQTT listener, closed in
// t.Cleanup. It is meant for tests that write MQTT bytes by hand.
func (s *Server) Dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.TCPAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("brokertest: dial %s: %v", s.TCPAddr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
