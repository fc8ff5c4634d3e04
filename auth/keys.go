package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sort"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms (JWT "alg" values).
const (
	// AlgEdDSA is Ed25519, the default: verifiers need only the public key.
	AlgEdDSA = "EdDSA"
	// AlgHS256 is HMAC-SHA256 with a shared secret of at least 32 bytes.
	AlgHS256 = "HS256"
)

// minHMACSecret is the shortest HS256 secret accepted (RFC 7518 3.2).
const minHMACSecret = 32

// Key is one named signing or verification key. Build it with
// NewEd25519Key, NewEd25519PublicKey or NewHMACKey.
type Key struct {
	id     string
	alg    string
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	secret []byte
}

// NewEd25519Key returns a signing key (its public half verifies too).
func NewEd25519Key(kid string, priv ed25519.PrivateKey) (Key, error) {
	if kid == "" || len(priv) != ed25519.PrivateKeySize {
		return Key{}, fmt.Errorf("%w: ed25519 private key %q", ErrInvalidKey, kid)
	}
	return Key{id: kid, alg: AlgEdDSA, priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// NewEd25519PublicKey returns a verify-only key.
func NewEd25519PublicKey(kid string, pub ed25519.PublicKey) (Key, error) {
	if kid == "" || len(pub) != ed25519.PublicKeySize {
		return Key{}, fmt.Errorf("%w: ed25519 public key %q", ErrInvalidKey, kid)
	}
	return Key{id: kid, alg: AlgEdDSA, pub: pub}, nil
}

// NewHMACKey returns an HS256 key; the secret must be at least 32 bytes.
// Whoever can verify an HS256 token can also mint one: prefer EdDSA when the
// verifier is not the issuer.
func NewHMACKey(kid string, secret []byte) (Key, error) {
	if kid == "" || len(secret) < minHMACSecret {
		return Key{}, fmt.Errorf("%w: hs256 secret %q must be at least %d bytes", ErrInvalidKey, kid, minHMACSecret)
	}
	return Key{id: kid, alg: AlgHS256, secret: append([]byte(nil), secret...)}, nil
}

// GenerateEd25519Key returns a fresh Ed25519 signing key with the given id.
func GenerateEd25519Key(kid string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return NewEd25519Key(kid, priv)
}

// ID returns the key id (JWT header "kid").
func (k Key) ID() string { return k.id }

// Algorithm returns AlgEdDSA or AlgHS256.
func (k Key) Algorithm() string { return k.alg }

// CanSign reports whether the key holds private material.
func (k Key) CanSign() bool { return k.priv != nil || k.secret != nil }

// Public returns the verify-only form of the key (HS256 keys are returned
// unchanged: the secret is needed to verify).
func (k Key) Public() Key {
	if k.alg == AlgEdDSA {
		return Key{id: k.id, alg: k.alg, pub: k.pub}
	}
	return k
}

// PublicKey returns the Ed25519 public key, or nil for an HS256 key.
func (k Key) PublicKey() ed25519.PublicKey { return k.pub }

func (k Key) method() jwt.SigningMethod {
	if k.alg == AlgHS256 {
		return jwt.SigningMethodHS256
	}
	return jwt.SigningMethodEdDSA
}

func (k Key) verifyKey() any {
	if k.alg == AlgHS256 {
		return k.secret
	}
	return k.pub
}

func (k Key) signKey() any {
	if k.alg == AlgHS256 {
		return k.secret
	}
	return k.priv
}

// KeySet holds the keys tokens are verified against (by kid) and names the
// active key new tokens are signed with. It is immutable and safe for
// concurrent use. Rotate keys by building a new KeySet: add the new key,
// make it active, keep the old one until its tokens have expired.
type KeySet struct {
	keys   map[string]Key
	active string
}

// NewKeySet returns a key set. active names the signing key; it may be ""
// for a verify-only set (a broker that only checks tokens).
func NewKeySet(active string, keys ...Key) (*KeySet, error) {
	ks := &KeySet{keys: make(map[string]Key, len(keys)), active: active}
	for _, k := range keys {
		if k.id == "" || k.alg == "" {
			return nil, fmt.Errorf("%w: empty key", ErrInvalidKey)
		}
		if _, dup := ks.keys[k.id]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateKey, k.id)
		}
		ks.keys[k.id] = k
	}
	if active != "" {
		k, ok := ks.keys[active]
		if !ok || !k.CanSign() {
			return nil, fmt.Errorf("%w: active key %q is not a configured private key", ErrNoActiveKey, active)
		}
	}
	return ks, nil
}

// Lookup returns the key with id kid.
func (ks *KeySet) Lookup(kid string) (Key, bool) {
	k, ok := ks.keys[kid]
	return k, ok
}

// Active returns the signing key, if the set has one.
func (ks *KeySet) Active() (Key, bool) {
	if ks.active == "" {
		return Key{}, false
	}
	return ks.keys[ks.active], true
}

// IDs returns the key ids in sorted order.
func (ks *KeySet) IDs() []string {
	ids := make([]string, 0, len(ks.keys))
	for id := range ks.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Public returns a verify-only copy of the set: Ed25519 keys lose their
// private half and no key is active.
func (ks *KeySet) Public() *KeySet {
	out := &KeySet{keys: make(map[string]Key, len(ks.keys))}
	for id, k := range ks.keys {
		out.keys[id] = k.Public()
	}
	return out
}

// Sign signs c with the active key, setting the kid header.
func (ks *KeySet) Sign(c *Claims) (string, error) {
	k, ok := ks.Active()
	if !ok {
		return "", ErrNoActiveKey
	}
	t := jwt.NewWithClaims(k.method(), c.toJWT())
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.signKey())
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
