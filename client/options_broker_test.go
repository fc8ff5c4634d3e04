package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "courier-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithConfig(func(c *broker.Config) {
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		c.Listeners = append(c.Listeners,
			broker.ListenerConfig{Name: "tls", Type: broker.ListenerTLS, Addr: "127.0.0.1:0", TLSConfig: tc},
			broker.ListenerConfig{Name: "wss", Type: broker.ListenerWebSocket, Addr: "127.0.0.1:0", Path: "/mqtt", TLSConfig: tc})
	}))
	addr := srv.Broker.Addr("tls")
	wss := "wss://" + srv.Broker.Addr("wss") + "/mqtt"
	tests := []struct {
		name    string
		opts    []client.Option
		wantErr bool
	}{
		{"tls url trusted", []client.Option{client.WithBrokerURL("tls://" + addr), client.WithTLS(&tls.Config{RootCAs: pool})}, false},
		{"address with WithTLS", []client.Option{client.WithAddress(hostPort(t, addr)), client.WithTLS(&tls.Config{RootCAs: pool})}, false},
		{"wss url", []client.Option{client.WithBrokerURL(wss), client.WithTLS(&tls.Config{RootCAs: pool})}, false},
		{"untrusted certificate", []client.Option{client.WithBrokerURL("mqtts://" + addr)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.NewClient(append(tt.opts, client.WithAutoReconnect(false), client.WithConnectTimeout(5*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			ev := c.Events(64)
			defer ev.Close()
			err = c.Start()
			if tt.wantErr {
				var ue x509.UnknownAuthorityError
				if !errors.As(err, &ue) {
					t.Fatalf("Start: %v, want an unknown authority error", err)
				}
				waitEvent(t, ev, client.EventSSLHandshakeFailure, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tt.name, "wss") { // gorilla does the wss handshake itself
				waitEvent(t, ev, client.EventSSLHandshakeSuccess, nil)
			}
			if err := c.Publish(ctxT(t), "tls/t", "secure", client.QOSOne); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWriteTimeoutBoundsPublishWithoutDeadline(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	px := startProxy(t, srv.TCPAddr)
	c := startClient(t, &brokertest.Server{TCPAddr: px.addr()}, client.WithWriteTimeout(200*time.Millisecond))
	px.blackhole()
	err := c.Publish(context.Background(), "wt/1", "x", client.QOSOne)
	if !errors.Is(err, client.ErrInFlight) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish into a black hole: %v, want ErrInFlight after the write timeout", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener that accepts TCP and never answers CONNECT.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	h, p := hostPort(t, ln.Addr().String())
	c, err := client.NewClient(client.WithAddress(h, p), client.WithConnectTimeout(200*time.Millisecond), client.WithAutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	done := make(chan error, 1)
	go func() { done <- c.Start() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded against a silent listener")
		}
	case <-time.After(waitFor):
		t.Fatal("connect timeout not applied")
	}
}

func TestLoggerNeverLogsSecrets(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	var mu sync.Mutex
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := &captureDialer{}
	c := startClient(t, srv, client.WithLogger(l), client.WithPassword("s3cret-pw"), client.WithDialer(d))
	ev := c.Events(32)
	defer ev.Close()
	if err := c.Publish(ctxT(t), "log/t", "payload-secret", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	d.cut()
	waitEvent(t, ev, client.EventReconnect, nil)
	c.Stop()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "msg=connected") || !strings.Contains(out, "msg=\"connection lost\"") {
		t.Fatalf("log lacks lifecycle records:\n%s", out)
	}
	for _, secret := range []string{"s3cret-pw", "payload-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestCustomEncoderAndDecoder(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	upper := func(ctx context.Context, v any) ([]byte, error) {
		s, ok := v.(string)
		if !ok {
			return nil, client.ErrUnsupportedType
		}
		return []byte(strings.ToUpper(s)), nil
	}
	reverse := func(_ context.Context, b []byte, v any) error {
		p, ok := v.(*string)
		if !ok {
			return client.ErrUnsupportedType
		}
		r := []rune(string(b))
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		*p = string(r)
		return nil
	}
	c := startClient(t, srv,
		client.WithCustomEncoder(client.ChainEncoders(upper, client.DefaultEncoder)),
		client.WithCustomDecoder(client.ChainDecoders(reverse, client.DefaultDecoder)))
	col := newCollector()
	if err := c.Subscribe(ctxT(t), "codec/t", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "codec/t", "abc", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	m := recv(t, col.ch)
	var s string
	if err := m.DecodePayload(&s); err != nil || string(m.Payload()) != "ABC" || s != "CBA" {
		t.Fatalf("payload %q decoded %q err %v", m.Payload(), s, err)
	}
	var n map[string]int
	if err := c.Publish(ctxT(t), "codec/t", map[string]int{"n": 1}, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, col.ch).DecodePayload(&n); err != nil || n["n"] != 1 {
		t.Fatalf("chained json fallback: %v %v", n, err)
	}
}
