package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// KeyConfig names one key file.
type KeyConfig struct {
	// ID is the key id (JWT "kid").
	ID string `json:"id" yaml:"id"`
	// Algorithm is "EdDSA" (default) or "HS256".
	Algorithm string `json:"algorithm" yaml:"algorithm"`
	// PrivateKeyFile is an Ed25519 PKCS #8 PEM file: the key can sign.
	PrivateKeyFile string `json:"private_key_file" yaml:"private_key_file"`
	// PublicKeyFile is an Ed25519 PKIX PEM file: the key only verifies. Set
	// one of PrivateKeyFile and PublicKeyFile for EdDSA.
	PublicKeyFile string `json:"public_key_file" yaml:"public_key_file"`
	// SecretFile holds the HS256 secret (at least 32 bytes).
	SecretFile string `json:"secret_file" yaml:"secret_file"`
}

// RateLimits for the token API.
type RateLimits struct {
	PerIdentity RateLimit `json:"per_identity" yaml:"per_identity"`
	PerAddress  RateLimit `json:"per_address" yaml:"per_address"`
}

// Config is the auth section of the broker's configuration file.
//
// How the broker wires it (cmd/broker and broker.Config):
//
//	if err := cfg.Auth.Validate(); err != nil { ... }       // every problem at once
//	var users *auth.Users
//	if cfg.Auth.UsersFile != "" {
//	    users, err = cfg.Auth.LoadUsers(yaml.Unmarshal)
//	}
//	switch {
//	case cfg.Auth.TokenAuthEnabled():                       // keys configured
//	    v, err := cfg.Auth.NewVerifier()                     // public keys suffice
//	    h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{
//	        Verifier: v, Users: users, Logger: l, OnDenied: emit, Identities: store})
//	    opts = append(opts, broker.WithAuthHook(h, nil))
//	case users != nil:
//	    h, err := hooks.NewUsersAuth(hooks.UsersAuthOptions{Users: users, Logger: l, OnDenied: emit})
//	    opts = append(opts, broker.WithAuthHook(h, nil))
//	}                                                        // neither: anonymous, loopback only
//	if tokenAPIAddr != "" {                                  // --token-api-addr
//	    api, err := cfg.Auth.NewTokenAPI(yaml.Unmarshal, l)  // needs active_key and api_keys_file
//	    mux := http.NewServeMux(); mux.Handle(auth.TokenPath, api)
//	}
//
// With both keys and a users file, one TokenAuth hook serves both (a
// password that is not a JWT is checked against the users file); never
// register two auth hooks, nor any allow-all hook, since mochi ORs them.
// `broker keys generate --dir D --kid K` is GenerateKeyFiles(D, K); a broker
// that only verifies needs just D/K.pub as public_key_file. Anonymous access
// must stay off whenever TokenAuthEnabled or UsersFile is set.
type Config struct {
	// Keys are the signing and verification keys.
	Keys []KeyConfig `json:"keys" yaml:"keys"`
	// ActiveKey is the id of the key new tokens are signed with; required by
	// the token API, not by a verify-only broker.
	ActiveKey string `json:"active_key" yaml:"active_key"`
	// Leeway is the clock skew allowed on exp/nbf (0 means the default 5s;
	// max 5m).
	Leeway time.Duration `json:"leeway" yaml:"leeway"`
	// VerifyCacheSize bounds the cache of verified tokens (see
	// VerifierOptions.CacheSize); 0 disables it. Default 10000.
	VerifyCacheSize int `json:"verify_cache_size" yaml:"verify_cache_size"`
	// APIKeysFile holds the token API's hashed API keys (see APIKeysFile).
	APIKeysFile string `json:"api_keys_file" yaml:"api_keys_file"`
	// UsersFile holds bcrypt users with ACLs (see UsersFile).
	UsersFile string `json:"users_file" yaml:"users_file"`
	// Policies decide what the token API issues per identity.
	Policies Policies `json:"policies" yaml:"policies"`
	// RateLimits bound token API requests per identity and per address.
	RateLimits RateLimits `json:"rate_limits" yaml:"rate_limits"`
	// BrokerHost and BrokerPort are the address the token API hands to
	// clients (host, port in the response).
	BrokerHost string `json:"broker_host" yaml:"broker_host"`
	BrokerPort int    `json:"broker_port" yaml:"broker_port"`
}

// DefaultConfig returns a fresh config with the default leeway and rate
// limits (per identity 1/s burst 5, per address 5/s burst 20), a verified
// token cache of 10000 and no keys.
func DefaultConfig() Config {
	return Config{
		Leeway:          DefaultLeeway,
		VerifyCacheSize: 10000,
		RateLimits: RateLimits{
			PerIdentity: RateLimit{Rate: 1, Burst: 5},
			PerAddress:  RateLimit{Rate: 5, Burst: 20},
		},
	}
}

// TokenAuthEnabled reports whether keys are configured, i.e. the broker must
// check tokens.
func (c Config) TokenAuthEnabled() bool { return len(c.Keys) > 0 }

// Validate reports every structural problem (files are read later, by the
// New/Load methods). Each error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	ids := map[string]KeyConfig{}
	for i, k := range c.Keys {
		if k.ID == "" {
			bad("keys[%d]: id is required", i)
		} else if _, dup := ids[k.ID]; dup {
			bad("keys[%d]: duplicate id %q", i, k.ID)
		}
		ids[k.ID] = k
		switch k.Algorithm {
		case "", AlgEdDSA:
			if (k.PrivateKeyFile == "") == (k.PublicKeyFile == "") {
				bad("keys[%d] %q: set exactly one of private_key_file and public_key_file", i, k.ID)
			}
			if k.SecretFile != "" {
				bad("keys[%d] %q: secret_file is for HS256 only", i, k.ID)
			}
		case AlgHS256:
			if k.SecretFile == "" {
				bad("keys[%d] %q: HS256 needs secret_file", i, k.ID)
			}
			if k.PrivateKeyFile != "" || k.PublicKeyFile != "" {
				bad("keys[%d] %q: key files are for EdDSA only", i, k.ID)
			}
		default:
			bad("keys[%d] %q: algorithm %q is not EdDSA or HS256", i, k.ID, k.Algorithm)
		}
	}
	if c.ActiveKey != "" {
		k, ok := ids[c.ActiveKey]
		if !ok {
			bad("active_key %q is not in keys", c.ActiveKey)
		} else if k.PrivateKeyFile == "" && k.SecretFile == "" {
			bad("active_key %q has no private key or secret", c.ActiveKey)
		}
	}
	if c.APIKeysFile != "" && c.ActiveKey == "" {
		bad("api_keys_file is set but active_key is not: the token API cannot sign")
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		bad("leeway %s out of range 0-5m", c.Leeway)
	}
	for name, rl := range map[string]RateLimit{"per_identity": c.RateLimits.PerIdentity, "per_address": c.RateLimits.PerAddress} {
		if rl.Rate < 0 || rl.Burst < 0 {
			bad("rate_limits.%s: rate and burst must not be negative", name)
		}
	}
	if c.VerifyCacheSize < 0 {
		bad("verify_cache_size %d is negative", c.VerifyCacheSize)
	}
	if c.BrokerPort < 0 || c.BrokerPort > 65535 {
		bad("broker_port %d out of range", c.BrokerPort)
	}
	if err := c.Policies.Validate(); err != nil {
		errs = append(errs, err)
	}
	return joinSorted(errs)
}

// LoadKeySet reads every key file.
func (c Config) LoadKeySet() (*KeySet, error) {
	keys := make([]Key, 0, len(c.Keys))
	var errs []error
	for _, kc := range c.Keys {
		var (
			k   Key
			err error
		)
		switch {
		case kc.Algorithm == AlgHS256:
			k, err = LoadHMACKeyFile(kc.ID, kc.SecretFile)
		case kc.PrivateKeyFile != "":
			k, err = LoadKeyFile(kc.ID, kc.PrivateKeyFile)
		default:
			k, err = LoadKeyFile(kc.ID, kc.PublicKeyFile)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", kc.ID, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewKeySet(c.ActiveKey, keys...)
}

// NewVerifier loads the keys and returns a Verifier using only their public
// halves.
func (c Config) NewVerifier() (*Verifier, error) {
	ks, err := c.LoadKeySet()
	if err != nil {
		return nil, err
	}
	return NewVerifier(ks.Public(), VerifierOptions{Leeway: c.Leeway, CacheSize: c.VerifyCacheSize}), nil
}

// NewTokenAPI loads the keys and API keys file and returns the token API
// handler. unmarshal decodes the API keys file (nil: JSON). To add hooks
// (OnResult, ClientAddr), use TokenAPIOptions and NewTokenAPI instead.
func (c Config) NewTokenAPI(unmarshal Unmarshal, logger *slog.Logger) (*TokenAPI, error) {
	opts, err := c.TokenAPIOptions(unmarshal)
	if err != nil {
		return nil, err
	}
	opts.Logger = logger
	return NewTokenAPI(opts)
}

// TokenAPIOptions loads the keys and API keys file and returns the token
// API options the config describes, for the caller to complete (Logger,
// OnResult, ClientAddr) and pass to NewTokenAPI.
func (c Config) TokenAPIOptions(unmarshal Unmarshal) (TokenAPIOptions, error) {
	ks, err := c.LoadKeySet()
	if err != nil {
		return TokenAPIOptions{}, err
	}
	iss, err := NewIssuer(IssuerOptions{Keys: ks, Host: c.BrokerHost, Port: c.BrokerPort})
	if err != nil {
		return TokenAPIOptions{}, err
	}
	if c.APIKeysFile == "" {
		return TokenAPIOptions{}, fmt.Errorf("%w: api_keys_file is required for the token API", ErrInvalidConfig)
	}
	authn, err := LoadAPIKeys(c.APIKeysFile, unmarshal)
	if err != nil {
		return TokenAPIOptions{}, err
	}
	return TokenAPIOptions{
		Authenticator: authn,
		Issuer:        iss,
		Policies:      c.Policies,
		PerIdentity:   c.RateLimits.PerIdentity,
		PerAddress:    c.RateLimits.PerAddress,
	}, nil
}

// LoadUsers reads the users file (nil unmarshal: JSON).
func (c Config) LoadUsers(unmarshal Unmarshal) (*Users, error) {
	return LoadUsers(c.UsersFile, unmarshal)
}

// joinSorted joins errs in message order, so reports are stable.
func joinSorted(errs []error) error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
