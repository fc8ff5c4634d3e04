package testbroker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// TokenIdentity is the identity of the API key WithTokenAuth makes; its
// clients' ids must match "loadgen-*" and it may use topics under loadgen/.
const TokenIdentity = "loadgen"

// WithTokenAuth turns on the broker's token auth and token API (the real ones,
// from auth/), with one API key (Server.APIKey) for TokenIdentity.
func WithTokenAuth() Option { return func(s *Server) { s.withToken = true } }

func (s *Server) tokenOption(t testing.TB) brokertest.Option {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatalf("token key: %v", err)
	}
	files, err := auth.WriteKeyPair(dir, key)
	if err != nil {
		t.Fatalf("token key: %v", err)
	}
	if s.APIKey, err = auth.GenerateAPIKey(); err != nil {
		t.Fatalf("api key: %v", err)
	}
	keysFile := filepath.Join(dir, "api_keys.yaml")
	body := fmt.Sprintf("keys:\n  - identity: %s\n    sha256: %s\n", TokenIdentity, auth.HashAPIKey(s.APIKey))
	if err := os.WriteFile(keysFile, []byte(body), 0o600); err != nil {
		t.Fatalf("api keys file: %v", err)
	}
	return brokertest.WithConfig(func(c *broker.Config) {
		c.Auth.Keys = []auth.KeyConfig{{ID: "k1", PrivateKeyFile: files.Private}}
		c.Auth.ActiveKey = "k1"
		c.Auth.APIKeysFile = keysFile
		grants := []string{TokenIdentity + "/#"}
		c.Auth.Policies.Default = &auth.Policy{ClientID: "%u-*", Publish: grants, Subscribe: grants}
		c.Auth.RateLimits.PerIdentity = auth.RateLimit{Rate: 1e6, Burst: 1e6}
		c.Auth.RateLimits.PerAddress = auth.RateLimit{Rate: 1e6, Burst: 1e6}
		c.TokenAPI.Addr = "127.0.0.1:0"
	})
}
