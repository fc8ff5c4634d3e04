package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateReportsEverything(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Keys = []KeyConfig{
		{ID: "a"},                                      // no file
		{ID: "a", PublicKeyFile: "x.pub"},              // duplicate
		{ID: "h", Algorithm: AlgHS256},                 // no secret
		{ID: "r", Algorithm: "RS256", SecretFile: "s"}, // bad alg
	}
	c.ActiveKey = "missing"
	c.Leeway = time.Hour
	c.BrokerPort = 70000
	c.RateLimits.PerIdentity.Rate = -1
	c.Policies.Default = &Policy{Subscribe: []string{"#/x"}}
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"exactly one of private_key_file", "duplicate id", "HS256 needs secret_file", `"RS256"`,
		`active_key "missing"`, "leeway", "broker_port", "per_identity", `"#/x"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate misses %q in:\n%v", want, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

// TestConfigEndToEnd generates a key pair on disk, builds a token API and a
// verify-only verifier from a Config, and checks a token issued by one
// verifies with the other.
func TestConfigEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := GenerateKeyFiles(dir, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKeyFiles(dir, "k1"); err == nil {
		t.Fatal("WriteKeyPair overwrote existing files")
	}
	if st, err := os.Stat(files.Private); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file mode: %v %v", st, err)
	}
	keysFile := filepath.Join(dir, "apikeys.json")
	if err := os.WriteFile(keysFile, []byte(`{"keys":[{"identity":"app","sha256":"`+HashAPIKey("ck_app")+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	issuing := DefaultConfig()
	issuing.Keys = []KeyConfig{{ID: "k1", PrivateKeyFile: files.Private}}
	issuing.ActiveKey = "k1"
	issuing.APIKeysFile = keysFile
	issuing.Policies.Default = &Policy{Publish: []string{"x/%u"}}
	if err := issuing.Validate(); err != nil {
		t.Fatal(err)
	}
	api, err := issuing.NewTokenAPI(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.issuer.Issue("app", Policy{}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	broker := DefaultConfig()
	broker.Keys = []KeyConfig{{ID: "k1", PublicKeyFile: files.Public}}
	if err := broker.Validate(); err != nil {
		t.Fatal(err)
	}
	v, err := broker.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(resp.Password, time.Now()); err != nil {
		t.Fatalf("token from the issuing config does not verify on the broker: %v", err)
	}
}

func TestGenerateKeyFilesRefusesPathKid(t *testing.T) {
	t.Parallel()
	for _, kid := range []string{"../x", "a/b", ".."} {
		if _, err := GenerateKeyFiles(t.TempDir(), kid); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("kid %q: %v", kid, err)
		}
	}
}

func TestParseKeyPEMErrors(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParseKeyPEM("k", []byte(data)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseKeyPEM(%q) = %v", data, err)
		}
	}
}
