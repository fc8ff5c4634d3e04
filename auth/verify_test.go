package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, kid string) Key {
	t.Helper()
	k, err := GenerateEd25519Key(kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeySet(t testing.TB, active string, keys ...Key) *KeySet {
	t.Helper()
	ks, err := NewKeySet(active, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func testClaims() *Claims {
	return &Claims{
		Subject:   "alice",
		ClientID:  "alice-1",
		IssuedAt:  t0,
		NotBefore: t0,
		ExpiresAt: t0.Add(time.Hour),
		ID:        "jti-1",
		Perms:     Grants{Pub: []string{"a/%u"}, Sub: []string{"a/+"}},
	}
}

func mustSign(t testing.TB, ks *KeySet, c *Claims) string {
	t.Helper()
	tok, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{AlgEdDSA, AlgHS256} {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, "k1")
			if alg == AlgHS256 {
				var err error
				k, err = NewHMACKey("k1", []byte(strings.Repeat("s", 32)))
				if err != nil {
					t.Fatal(err)
				}
			}
			ks := mustKeySet(t, "k1", k)
			tok := mustSign(t, ks, testClaims())
			v := NewVerifier(ks.Public(), VerifierOptions{})
			c, err := v.Verify(tok, t0.Add(time.Minute))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := testClaims()
			if c.Subject != want.Subject || c.ClientID != want.ClientID || c.ID != want.ID ||
				!c.ExpiresAt.Equal(want.ExpiresAt) || !c.NotBefore.Equal(want.NotBefore) ||
				strings.Join(c.Perms.Pub, ",") != "a/%u" || strings.Join(c.Perms.Sub, ",") != "a/+" {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

// rawToken builds a token with an arbitrary header, claims and signature.
func rawToken(t *testing.T, header map[string]any, claims any, sig []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k1 := mustKey(t, "k1")
	ks := mustKeySet(t, "k1", k1)
	v := NewVerifier(ks.Public(), VerifierOptions{Leeway: 5 * time.Second})
	good := mustSign(t, ks, testClaims())

	forger := mustKeySet(t, "k1", mustKey(t, "k1")) // same kid, other key
	unknown := mustKeySet(t, "k9", mustKey(t, "k9"))

	// alg confusion: HS256 keyed with the Ed25519 public key bytes
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, testClaims().toJWT())
	hs.Header["kid"] = "k1"
	confused, err := hs.SignedString([]byte(k1.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	none := rawToken(t, map[string]any{"alg": "none", "kid": "k1", "typ": "JWT"}, testClaims().toJWT(), nil)
	noKid := jwt.NewWithClaims(jwt.SigningMethodEdDSA, testClaims().toJWT())
	noKidTok, _ := noKid.SignedString(ed25519.PrivateKey(k1.priv))
	noCID := testClaims()
	noCID.ClientID = ""
	tampered := strings.Split(good, ".")
	other := strings.Split(mustSign(t, ks, func() *Claims { c := testClaims(); c.Admin = true; return c }()), ".")

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"forged signature", mustSign(t, forger, testClaims()), t0, ErrBadSignature},
		{"swapped payload", tampered[0] + "." + other[1] + "." + tampered[2], t0, ErrBadSignature},
		{"unknown key id", mustSign(t, unknown, testClaims()), t0, ErrUnknownKey},
		{"no key id", noKidTok, t0, ErrUnknownKey},
		{"alg none", none, t0, ErrAlgorithm},
		{"alg confusion", confused, t0, ErrAlgorithm},
		{"expired", good, t0.Add(time.Hour + 5*time.Second), ErrTokenExpired},
		{"not yet valid", good, t0.Add(-6 * time.Second), ErrTokenNotYetValid},
		{"malformed", "not.a.jwt", t0, ErrMalformed},
		{"empty", "", t0, ErrMalformed},
		{"huge", strings.Repeat("a", 9000), t0, ErrMalformed},
		{"missing cid", mustSign(t, ks, noCID), t0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token, tt.now)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Verify = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	ks := mustKeySet(t, "k1", mustKey(t, "k1"))
	tok := mustSign(t, ks, testClaims())
	v := NewVerifier(ks, VerifierOptions{Leeway: 5 * time.Second})
	for _, now := range []time.Time{t0.Add(-4 * time.Second), t0.Add(time.Hour + 4*time.Second)} {
		if _, err := v.Verify(tok, now); err != nil {
			t.Errorf("within leeway at %s: %v", now, err)
		}
	}
	strict := NewVerifier(ks, VerifierOptions{Leeway: -1})
	if _, err := strict.Verify(tok, t0.Add(time.Hour)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("no leeway at exp: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	old, cur := mustKey(t, "2026-01"), mustKey(t, "2026-11")
	before := mustKeySet(t, "2026-01", old)
	after := mustKeySet(t, "2026-11", old, cur)
	v := NewVerifier(after.Public(), VerifierOptions{})
	for _, ks := range []*KeySet{before, after} {
		if _, err := v.Verify(mustSign(t, ks, testClaims()), t0); err != nil {
			t.Errorf("token from %v: %v", ks.IDs(), err)
		}
	}
	if _, err := after.Public().Sign(testClaims()); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("public key set signed: %v", err)
	}
}

func TestNewKeySetErrors(t *testing.T) {
	t.Parallel()
	k := mustKey(t, "k")
	if _, err := NewKeySet("", k, k); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := NewKeySet("k", k.Public()); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("public active: %v", err)
	}
	if _, err := NewKeySet("x", k); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("missing active: %v", err)
	}
	if _, err := NewHMACKey("h", []byte("short")); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short secret: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{AlgEdDSA, AlgHS256} {
		b.Run(alg, func(b *testing.B) {
			k := mustKey(b, "k1")
			if alg == AlgHS256 {
				k, _ = NewHMACKey("k1", []byte(strings.Repeat("s", 32)))
			}
			ks := mustKeySet(b, "k1", k)
			tok := mustSign(b, ks, testClaims())
			v := NewVerifier(ks.Public(), VerifierOptions{})
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if _, err := v.Verify(tok, t0); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

func TestVerifyCache(t *testing.T) {
	t.Parallel()
	ks := mustKeySet(t, "k1", mustKey(t, "k1"))
	v := NewVerifier(ks.Public(), VerifierOptions{CacheSize: 2, Leeway: -1})
	tok := mustSign(t, ks, testClaims())
	for range 3 {
		c, err := v.Verify(tok, t0)
		if err != nil || c.Subject != "alice" {
			t.Fatalf("cached verify: %v %v", c, err)
		}
		c.Subject = "mallory" // must not poison the cache
	}
	if _, err := v.Verify(tok, t0.Add(time.Hour)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("cached token past exp: %v", err)
	}
	if _, err := v.Verify(tok, t0.Add(-time.Minute)); !errors.Is(err, ErrTokenNotYetValid) {
		t.Fatalf("cached token before nbf: %v", err)
	}
	parts := strings.Split(tok, ".")
	if _, err := v.Verify(parts[0]+"."+parts[1]+".AAAA", t0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad signature with a cached payload: %v", err)
	}
	for i := range 5 {
		c := testClaims()
		c.ID = fmt.Sprint("jti-", i)
		if _, err := v.Verify(mustSign(t, ks, c), t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.cache.m); n > 2 {
		t.Fatalf("cache grew to %d", n)
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	ks := mustKeySet(b, "k1", mustKey(b, "k1"))
	tok := mustSign(b, ks, testClaims())
	v := NewVerifier(ks.Public(), VerifierOptions{CacheSize: 1024})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAndCompile(b *testing.B) {
	ks := mustKeySet(b, "k1", mustKey(b, "k1"))
	tok := mustSign(b, ks, testClaims())
	v := NewVerifier(ks.Public(), VerifierOptions{})
	b.ReportAllocs()
	for b.Loop() {
		c, err := v.Verify(tok, t0)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Compile()
	}
}

func BenchmarkCanReceive(b *testing.B) {
	p := Compile(Grants{Sub: []string{"devices/%c/in/#", "chat/+", "news/+/today", "a/b/c/d"}}, false, "alice", "alice-1")
	b.ReportAllocs()
	for b.Loop() {
		if !p.CanReceive("devices/alice-1/in/cmd/reboot") {
			b.Fatal("denied")
		}
	}
}
