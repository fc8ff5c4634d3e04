// Package testbroker starts a real MQTT broker in process for loadgen's tests:
// TCP and WebSocket listeners on 127.0.0.1, restartable on the same addresses.
package testbroker

import (
	"bytes"
	"log/slog"
	"net"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Server is a running (or stopped) test broker.
type Server struct {
	TCPAddr  string // host:port
	WSURL    string // ws://host:port/mqtt
	password []byte
	srv      *mqtt.Server
}

// Option changes a Server.
type Option func(*Server)

// WithPassword makes the broker refuse every CONNECT whose password is not pw.
func WithPassword(pw string) Option { return func(s *Server) { s.password = []byte(pw) } }

// Start starts a broker on free loopback ports; t.Cleanup stops it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{TCPAddr: freeAddr(t)}
	s.WSURL = "ws://" + freeAddr(t) + "/mqtt"
	for _, o := range opts {
		o(s)
	}
	s.start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(&authHook{password: s.password}, nil); err != nil {
		t.Fatalf("add hook: %v", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: s.TCPAddr})); err != nil {
		t.Fatalf("tcp listener: %v", err)
	}
	wsAddr := s.WSURL[len("ws://") : len(s.WSURL)-len("/mqtt")]
	if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: wsAddr})); err != nil {
		t.Fatalf("ws listener: %v", err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	s.srv = srv
}

// SetPassword changes the password required from the next (re)start on; "" allows all.
func (s *Server) SetPassword(pw string) {
	s.password = nil
	if pw != "" {
		s.password = []byte(pw)
	}
}

// Stop shuts the broker down, keeping its addresses for Restart. Idempotent.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// Restart stops the broker and starts a new one on the same addresses.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.start(t)
}

type authHook struct {
	mqtt.HookBase
	password []byte
}

func (h *authHook) ID() string { return "testbroker-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.password == nil || bytes.Equal(pk.Connect.Password, h.password)
}

func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool { return true }
