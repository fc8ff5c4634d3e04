package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
)

func TestDefaultConfigIsValidAndFresh(t *testing.T) {
	a := broker.DefaultConfig()
	if err := a.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	a.Listeners[0].Addr = "changed"
	if b := broker.DefaultConfig(); b.Listeners[0].Addr == "changed" {
		t.Fatal("DefaultConfig shares state between calls")
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{
		{Name: "a", Type: "carrier-pigeon", Addr: "127.0.0.1:1"},
		{Name: "a", Type: broker.ListenerTCP, Addr: "no-port"},
		{Name: "t", Type: broker.ListenerTLS, Addr: "127.0.0.1:0"},
		{Name: "open", Type: broker.ListenerTCP, Addr: "0.0.0.0:1883"},
	}
	cfg.Limits.KeepaliveFloor = 0
	cfg.Limits.MaxPendingWrites = 0
	cfg.Ops.Addr = "nonsense"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	want := []string{
		`type "carrier-pigeon"`,
		`duplicate listener name "a"`,
		`addr "no-port" is not host:port`,
		`tls listener needs cert_file and key_file`,
		`anonymous access is local-only`,
		`keepalive_floor`,
		`max_pending_writes`,
		`ops.addr "nonsense"`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error list lacks %q:\n%v", w, err)
		}
	}
	if _, err := broker.New(cfg); err == nil {
		t.Fatal("New accepted a broken config")
	}
}

func TestAnonymousNetworkAccessNeedsExplicitConsent(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: broker.ListenerTCP, Addr: "0.0.0.0:1883"}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("anonymous broker on 0.0.0.0 accepted without consent")
	}
	cfg.AllowAnonymousNetwork = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with consent: %v", err)
	}
	cfg.AllowAnonymousNetwork, cfg.AllowAnonymous = false, false
	if err := cfg.Validate(); err != nil {
		t.Fatalf("without anonymous access: %v", err)
	}
}

func TestLimitsOutsideTheProtocolAreRefused(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*broker.Limits)
	}{
		{"packet size over MQTT maximum", func(l *broker.Limits) { l.MaxPacketSize = 1 << 29 }},
		{"keepalive ceiling over 65535 s", func(l *broker.Limits) { l.KeepaliveCeiling = 70000 * time.Second }},
		{"floor above ceiling", func(l *broker.Limits) { l.KeepaliveFloor, l.KeepaliveCeiling = time.Hour, time.Minute }},
		{"negative message expiry", func(l *broker.Limits) { l.MaxMessageExpiry = -time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := broker.DefaultConfig()
			tc.mod(&cfg.Limits)
			if err := cfg.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	var e interface{ Unwrap() []error }
	cfg := broker.DefaultConfig()
	cfg.Limits.MaxClients, cfg.Limits.ReceiveMaximum = -1, 0
	if err := cfg.Validate(); !errors.As(err, &e) || len(e.Unwrap()) != 2 {
		t.Fatalf("want two joined errors, got %v", err)
	}
}
