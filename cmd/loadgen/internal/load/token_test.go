package load_test

import (
	"context"
	"errors"
	"testing"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// These run against our broker's real token auth and token API.

func TestConnWithOurTokenAPI(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithTokenAuth())
	for _, prefetch := range []bool{false, true} {
		cfg := connConfig(srv.TCPAddr, 10)
		cfg.ClientPrefix = testbroker.TokenIdentity + "-c-"
		cfg.TokenURL, cfg.TokenKey, cfg.TokenPrefetch = srv.TokenURL, srv.APIKey, prefetch
		res := run(t, cfg)
		c := res.Conns
		if c.Connected != 10 || c.TokenCalls != 10 || c.AuthErrors != 0 {
			t.Fatalf("prefetch %v: connected %d token calls %d auth errors %d", prefetch, c.Connected, c.TokenCalls, c.AuthErrors)
		}
		if prefetch != (c.TokenSeconds > 0) {
			t.Fatalf("prefetch %v but token seconds %v", prefetch, c.TokenSeconds)
		}
	}
}

func TestOurBrokerRefusesWithoutToken(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithTokenAuth())
	for _, v := range []byte{wire.V311, wire.V5} {
		cfg := connConfig(srv.TCPAddr, 3)
		cfg.Version = v
		res, err := load.Run(context.Background(), cfg)
		if !errors.Is(err, load.ErrNotConnected) || res.Conns.AuthErrors != 3 {
			t.Fatalf("v%d: err %v auth errors %d", v, err, res.Conns.AuthErrors)
		}
	}
}

func TestPubSubWithOurTokenAPI(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithTokenAuth())
	cfg := pubsubConfig(srv.TCPAddr)
	cfg.ClientPrefix = testbroker.TokenIdentity + "-"
	cfg.Topic = testbroker.TokenIdentity + "/ps"
	cfg.TokenURL, cfg.TokenKey = srv.TokenURL, srv.APIKey
	cfg.QoS = 1
	cfg.Publishers, cfg.Subscribers = 2, 2
	res := run(t, cfg)
	if m := res.Msgs; m.Unique != 800 || m.Lost != 0 || m.Acked != 400 || res.Conns.TokenCalls != 4 {
		t.Fatalf("unique %d lost %d acked %d token calls %d", m.Unique, m.Lost, m.Acked, res.Conns.TokenCalls)
	}
}
