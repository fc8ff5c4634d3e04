package broker_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// withTokenAuth configures broker tokens, a token API on 127.0.0.1:0 and one
// API key for identity "app"; it returns the API key.
func withTokenAuth(t *testing.T) (brokertest.Option, string) {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	files, err := auth.WriteKeyPair(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	apiKey, err := auth.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(dir, "api_keys.yaml")
	body := fmt.Sprintf("keys:\n  - identity: app\n    sha256: %s\n", auth.HashAPIKey(apiKey))
	if err := os.WriteFile(keysFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return brokertest.WithConfig(func(c *broker.Config) {
		c.Auth.Keys = []auth.KeyConfig{{ID: "k1", PrivateKeyFile: files.Private}}
		c.Auth.ActiveKey = "k1"
		c.Auth.APIKeysFile = keysFile
		c.Auth.Policies.Default = &auth.Policy{Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/%u/#"}}
		c.TokenAPI.Addr = "127.0.0.1:0"
	}), apiKey
}

// connectAuth builds a CONNECT with username and password.
func connectAuth(version byte, id, user, pass string) []byte {
	body := append(str("MQTT"), version, 0xC2, 0, 30) // username, password, clean
	if version == 5 {
		body = append(body, 0)
	}
	body = append(body, str(id)...)
	body = append(body, str(user)...)
	body = append(body, str(pass)...)
	return frame(0x10, body)
}

func fetchToken(t *testing.T, srv *brokertest.Server, apiKey string) auth.TokenResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Broker.Addr("token-api")+auth.TokenPath, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token API status %d", resp.StatusCode)
	}
	var tr auth.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTokenFromTheTokenAPIConnectsAndAnonymousIsRefused(t *testing.T) {
	opt, apiKey := withTokenAuth(t)
	srv := brokertest.Start(t, opt)
	obs := srv.Broker.Observe(16, broker.EventAuthDenied)

	tr := fetchToken(t, srv, apiKey)
	ok := dialRaw(t, "tcp", srv.TCPAddr)
	ok.send(connectAuth(5, tr.ClientID, tr.Username, tr.Password))
	if p, err := ok.read(5 * time.Second); err != nil || p.kind() != 2 || p.body[1] != 0 {
		t.Fatalf("token CONNECT: want CONNACK 0, got %#x %x %v", p.header, p.body, err)
	}

	for _, v := range []struct {
		version byte
		code    byte
	}{{5, 0x86}, {4, 0x04}} {
		anon := dialRaw(t, "tcp", srv.TCPAddr)
		anon.send(connectPacket(v.version, "anon", 30))
		p, err := anon.read(5 * time.Second)
		if err != nil || p.kind() != 2 || p.body[1] != v.code {
			t.Fatalf("anonymous v%d CONNECT: want CONNACK %#x, got %#x %x %v", v.version, v.code, p.header, p.body, err)
		}
		anon.expectClosed(5 * time.Second)
		select {
		case ev := <-obs.C:
			if ev.ClientID != "anon" {
				t.Fatalf("denial event for %q", ev.ClientID)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no auth_denied event")
		}
	}
	if got := metricValue(t, srv, `courier_auth_denied_total{op="connect"}`); got != "2" {
		t.Fatalf(`courier_auth_denied_total{op="connect"} = %q, want 2`, got)
	}
}

func TestAuthConfigProblemsAreReportedWithTheRest(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.TokenAPI.Addr = "127.0.0.1:0"
	cfg.Auth.Keys = []auth.KeyConfig{{ID: "k", Algorithm: "RS256"}}
	cfg.Auth.UsersFile = "users.yaml"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"RS256", "token_api.addr"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestVerifierFromCodeRequiresTokens(t *testing.T) {
	key, err := auth.GenerateEd25519Key("code")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.NewKeySet("code", key)
	if err != nil {
		t.Fatal(err)
	}
	srv := brokertest.Start(t, brokertest.WithOptions(broker.WithTokenVerifier(auth.NewVerifier(ks.Public(), auth.VerifierOptions{}))))
	anon := dialRaw(t, "tcp", srv.TCPAddr)
	anon.send(connectPacket(5, "anon", 30))
	if p, err := anon.read(5 * time.Second); err != nil || p.kind() != 2 || p.body[1] != 0x86 {
		t.Fatalf("anonymous CONNECT: want CONNACK 0x86, got %#x %x %v", p.header, p.body, err)
	}
	tok, err := ks.Sign(&auth.Claims{Subject: "dev", ClientID: "dev-1", ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	ok := dialRaw(t, "tcp", srv.TCPAddr)
	ok.send(connectAuth(5, "dev-1", "dev", tok))
	if p, err := ok.read(5 * time.Second); err != nil || p.kind() != 2 || p.body[1] != 0 {
		t.Fatalf("token CONNECT: want CONNACK 0, got %#x %x %v", p.header, p.body, err)
	}
}
