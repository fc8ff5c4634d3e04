// Package testbroker runs our broker in process for loadgen's tests (through
// broker/brokertest), with an optional password check that can change across
// restarts, so tests can provoke authentication errors.
package testbroker

import (
	"bytes"
	"crypto/tls"
	"sync/atomic"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// Server is a running (or stopped) test broker.
type Server struct {
	TCPAddr string // host:port
	WSURL   string // ws://host:port/mqtt
	OpsURL  string // http://host:port (/metrics)
	// TLSAddr is host:port of a TLS listener (WithTLS only), and ClientTLS a
	// client configuration that trusts its certificate.
	TLSAddr   string
	ClientTLS *tls.Config
	// TokenURL and APIKey reach the broker's token API (WithTokenAuth only).
	TokenURL  string
	APIKey    string
	srv       *brokertest.Server
	auth      *authHook
	withTLS   bool
	withToken bool
}

// WithTLS adds a TLS listener with a fresh self-signed certificate.
func WithTLS() Option { return func(s *Server) { s.withTLS = true } }

// Option changes a Server.
type Option func(*Server)

// WithPassword makes the broker refuse every CONNECT whose password is not pw.
func WithPassword(pw string) Option { return func(s *Server) { s.SetPassword(pw) } }

// Start starts a broker on free loopback ports; t.Cleanup stops it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{auth: &authHook{}}
	for _, o := range opts {
		o(s)
	}
	bopts := []brokertest.Option{brokertest.WithoutStore()}
	if s.withToken {
		bopts = append(bopts, s.tokenOption(t))
	} else {
		// mochi ORs auth hooks: ours only when the broker's token auth is off.
		bopts = append(bopts, brokertest.WithOptions(broker.WithAuthHook(s.auth, nil)))
	}
	if s.withTLS {
		var serverTLS *tls.Config
		serverTLS, s.ClientTLS = selfSigned(t)
		bopts = append(bopts, brokertest.WithConfig(func(c *broker.Config) {
			c.Listeners = append(c.Listeners, broker.ListenerConfig{Name: "tls", Type: broker.ListenerTLS, Addr: "127.0.0.1:0", TLSConfig: serverTLS})
		}))
	}
	s.srv = brokertest.Start(t, bopts...)
	s.TCPAddr, s.WSURL, s.OpsURL = s.srv.TCPAddr, s.srv.WSURL, s.srv.OpsURL
	if s.withTLS {
		s.TLSAddr = s.srv.Broker.Addr("tls")
	}
	if s.withToken {
		s.TokenURL = "http://" + s.srv.Broker.Addr("token-api") + "/v1/token"
	}
	return s
}

// SetPassword changes the password required from now on; "" allows everyone.
func (s *Server) SetPassword(pw string) {
	var p *[]byte
	if pw != "" {
		b := []byte(pw)
		p = &b
	}
	s.auth.password.Store(p)
}

// Stop shuts the broker down gracefully, keeping its addresses for Restart.
func (s *Server) Stop(t testing.TB) { s.srv.Stop(t) }

// Restart stops the broker (if running) and starts a new one on the same addresses.
func (s *Server) Restart(t testing.TB) { s.srv.Restart(t) }

type authHook struct {
	mqtt.HookBase
	password atomic.Pointer[[]byte]
}

func (h *authHook) ID() string { return "loadgen-test-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	p := h.password.Load()
	return p == nil || bytes.Equal(pk.Connect.Password, *p)
}

func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool { return true }
