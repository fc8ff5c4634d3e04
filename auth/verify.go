package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 5 * time.Second

// maxTokenLen bounds the work spent on hostile input (an MQTT password can
// be 64 KiB).
const maxTokenLen = 8 << 10

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Leeway is the clock skew allowed on exp/nbf/iat. 0 means DefaultLeeway;
	// a negative value means no leeway.
	Leeway time.Duration
	// CacheSize, if positive, remembers that many tokens whose signature
	// verified (keyed by their SHA-256), so a client reconnecting with the
	// token it already used skips the signature check. Time claims are
	// still checked on every call. A reconnect storm after a network blip
	// then costs little; a broker restart starts with an empty cache.
	CacheSize int
}

// Verifier checks broker tokens. It is safe for concurrent use.
type Verifier struct {
	keys   *KeySet
	leeway time.Duration
	parser *jwt.Parser
	cache  *claimsCache
}

// NewVerifier returns a Verifier for tokens signed by any key in keys.
// Only public material is needed: pass ks.Public() to a broker.
func NewVerifier(keys *KeySet, opts VerifierOptions) *Verifier {
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	var cache *claimsCache
	if opts.CacheSize > 0 {
		cache = &claimsCache{max: opts.CacheSize, m: make(map[[sha256.Size]byte]*Claims)}
	}
	return &Verifier{
		keys:   keys,
		leeway: leeway,
		cache:  cache,
		// Time claims are checked below against the caller's clock; the parser
		// only decodes and checks the signature. "none" is never a valid method.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{AlgEdDSA, AlgHS256}),
			jwt.WithoutClaimsValidation(),
		),
	}
}

// Leeway returns the clock skew the verifier allows.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks token's signature (the key named by its kid, with that key's
// algorithm only) and its time claims against now, and returns its claims.
// Errors wrap one of ErrMalformed, ErrUnknownKey, ErrAlgorithm,
// ErrBadSignature, ErrTokenExpired or ErrTokenNotYetValid. The returned
// claims' slices may be shared with other callers: do not modify them.
func (v *Verifier) Verify(token string, now time.Time) (*Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, ErrMalformed
	}
	var sum [sha256.Size]byte
	var c *Claims
	if v.cache != nil {
		sum = sha256.Sum256([]byte(token))
		c = v.cache.get(sum)
	}
	if c == nil {
		var jc jwtClaims
		_, err := v.parser.ParseWithClaims(token, &jc, v.keyFunc)
		if err != nil {
			return nil, classify(err)
		}
		c = jc.toClaims()
		if c.Subject == "" || c.ClientID == "" || c.ExpiresAt.IsZero() {
			return nil, fmt.Errorf("%w: sub, cid and exp are required", ErrMalformed)
		}
		if v.cache != nil {
			v.cache.put(sum, c, now, v.leeway)
		}
	}
	cp := *c // callers get their own struct
	c = &cp
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return nil, ErrTokenExpired
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-v.leeway)) {
		return nil, ErrTokenNotYetValid
	}
	if !c.IssuedAt.IsZero() && now.Before(c.IssuedAt.Add(-v.leeway)) {
		return nil, ErrTokenNotYetValid
	}
	return c, nil
}

func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k, ok := v.keys.Lookup(kid)
	if !ok {
		return nil, ErrUnknownKey
	}
	// The algorithm is a property of the key, never of the token: an HS256
	// token must not be checked with an EdDSA public key used as a secret.
	if t.Method.Alg() != k.alg {
		return nil, ErrAlgorithm
	}
	return k.verifyKey(), nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return ErrUnknownKey
	case errors.Is(err, ErrAlgorithm):
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// also "signing method X is invalid" from WithValidMethods
		if errors.Is(err, jwt.ErrSignatureInvalid) || errors.Is(err, jwt.ErrEd25519Verification) {
			return ErrBadSignature
		}
		return ErrAlgorithm
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// claimsCache maps token hashes to verified claims. It is bounded: when full,
// expired entries are dropped, then an arbitrary one.
type claimsCache struct {
	max int
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*Claims
}

func (cc *claimsCache) get(k [sha256.Size]byte) *Claims {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.m[k]
}

func (cc *claimsCache) put(k [sha256.Size]byte, c *Claims, now time.Time, leeway time.Duration) {
	if !now.Before(c.ExpiresAt.Add(leeway)) {
		return // never cache what is already dead
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.m) >= cc.max {
		for key, old := range cc.m {
			if !now.Before(old.ExpiresAt.Add(leeway)) {
				delete(cc.m, key)
			}
		}
		for key := range cc.m {
			if len(cc.m) < cc.max {
				break
			}
			delete(cc.m, key)
		}
	}
	cc.m[k] = c
}
