package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Authenticator identifies the caller of the token API. Plug in your own
// identity system (sessions, OIDC, mTLS) by implementing it. Return an error
// wrapping ErrUnauthenticated for missing or wrong credentials (answered 401);
// any other error is answered 500. Implementations must be safe for
// concurrent use.
type Authenticator interface {
	Authenticate(r *http.Request) (identity string, err error)
}

// Unmarshal decodes a configuration file; pass yaml.Unmarshal for YAML files.
// nil means encoding/json.
type Unmarshal func(data []byte, v any) error

// APIKeyEntry is one API key as stored: the identity it authenticates and
// the hex SHA-256 of the key. The key itself is never stored.
type APIKeyEntry struct {
	Identity string `json:"identity" yaml:"identity"`
	SHA256   string `json:"sha256" yaml:"sha256"`
}

// APIKeysFile is the layout of the API keys file:
//
//	keys:
//	  - identity: app-backend
//	    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
type APIKeysFile struct {
	Keys []APIKeyEntry `json:"keys" yaml:"keys"`
}

type apiKey struct {
	identity string
	hash     [sha256.Size]byte
}

// APIKeyAuthenticator authenticates "Authorization: Bearer {key}" against
// hashed API keys. It is immutable and safe for concurrent use.
type APIKeyAuthenticator struct {
	keys []apiKey
}

// NewAPIKeyAuthenticator returns an authenticator for the given entries.
func NewAPIKeyAuthenticator(entries []APIKeyEntry) (*APIKeyAuthenticator, error) {
	a := &APIKeyAuthenticator{keys: make([]apiKey, 0, len(entries))}
	var problems []string
	for i, e := range entries {
		raw, err := hex.DecodeString(e.SHA256)
		if err != nil || len(raw) != sha256.Size {
			problems = append(problems, fmt.Sprintf("entry %d: sha256 must be 64 hex digits", i))
			continue
		}
		if !validIdentity(e.Identity) {
			problems = append(problems, fmt.Sprintf("entry %d: invalid identity %q", i, e.Identity))
			continue
		}
		k := apiKey{identity: e.Identity}
		copy(k.hash[:], raw)
		a.keys = append(a.keys, k)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: api keys: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return a, nil
}

// LoadAPIKeys reads an APIKeysFile from path.
func LoadAPIKeys(path string, unmarshal Unmarshal) (*APIKeyAuthenticator, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	if unmarshal == nil {
		unmarshal = json.Unmarshal
	}
	var f APIKeysFile
	if err := unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: api keys %s: %v", ErrInvalidConfig, path, err)
	}
	return NewAPIKeyAuthenticator(f.Keys)
}

// Authenticate implements Authenticator. Every stored hash is compared in
// constant time, so the answer time does not depend on which key matched.
func (a *APIKeyAuthenticator) Authenticate(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", ErrUnauthenticated
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	found := -1
	for i := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], a.keys[i].hash[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", ErrUnauthenticated
	}
	return a.keys[found].identity, nil
}

// HashAPIKey returns the hex SHA-256 of key, the form stored in the API keys
// file.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewAPIKeyEntry generates an API key for identity and returns it with the
// entry to store in the API keys file (hash only).
func NewAPIKeyEntry(identity string) (key string, entry APIKeyEntry, err error) {
	if !validIdentity(identity) {
		return "", APIKeyEntry{}, ErrInvalidIdentity
	}
	key, err = GenerateAPIKey()
	if err != nil {
		return "", APIKeyEntry{}, err
	}
	return key, APIKeyEntry{Identity: identity, SHA256: HashAPIKey(key)}, nil
}

// GenerateAPIKey returns a new random API key (256 bits, URL-safe base64
// with a "ck_" prefix). Store HashAPIKey(key); hand the key to the caller.
func GenerateAPIKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return "ck_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
