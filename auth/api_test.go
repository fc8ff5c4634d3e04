package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the limiter tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type apiFixture struct {
	srv      *httptest.Server
	verifier *Verifier
	clock    *fakeClock
}

const (
	aliceKey = "ck_alice-secret-key"
	bobKey   = "ck_bob-secret-key"
)

func newAPI(t *testing.T, perID, perAddr RateLimit) *apiFixture {
	return newAPIWith(t, perID, perAddr, nil)
}

func newAPIWith(t *testing.T, perID, perAddr RateLimit, onResult func(TokenAPIResult)) *apiFixture {
	t.Helper()
	ks := mustKeySet(t, "k1", mustKey(t, "k1"))
	iss, err := NewIssuer(IssuerOptions{Keys: ks, Host: "broker.example", Port: 1883})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := NewAPIKeyAuthenticator([]APIKeyEntry{
		{Identity: "alice", SHA256: HashAPIKey(aliceKey)},
		{Identity: "bob", SHA256: HashAPIKey(bobKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0}
	api, err := NewTokenAPI(TokenAPIOptions{
		Authenticator: authn,
		Issuer:        iss,
		Policies: Policies{Identities: map[string]Policy{
			"alice": {ClientID: "%u-*", KeepAlive: 30 * time.Second, TokenTTL: 10 * time.Minute,
				Publish: []string{"chat/%u"}, Subscribe: []string{"chat/+"}},
		}},
		PerIdentity: perID,
		PerAddress:  perAddr,
		Now:         clock.Now,
		OnResult:    onResult,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiFixture{srv: srv, verifier: NewVerifier(ks.Public(), VerifierOptions{}), clock: clock}
}

func (f *apiFixture) do(t *testing.T, method, query, key, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+TokenPath+query, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

func TestTokenAPISuccess(t *testing.T) {
	t.Parallel()
	f := newAPI(t, RateLimit{}, RateLimit{})
	for _, tc := range []struct{ method, query, body, wantCID string }{
		{http.MethodGet, "", "", ""},
		{http.MethodGet, "?clientId=alice-phone", "", "alice-phone"},
		{http.MethodPost, "", `{"clientId":"alice-tablet"}`, "alice-tablet"},
		{http.MethodPost, "", "", ""},
	} {
		resp, body := f.do(t, tc.method, tc.query, aliceKey, tc.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d %s", tc.method, tc.query, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"clientId", "username", "password", "host", "port", "cleanSession", "keepAlive", "expiresAt"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("response lacks %q: %s", k, body)
			}
		}
		if len(fields) != 8 {
			t.Errorf("response has %d fields, want exactly 8: %s", len(fields), body)
		}
		var tr TokenResponse
		_ = json.Unmarshal(body, &tr)
		if tc.wantCID != "" && tr.ClientID != tc.wantCID || !strings.HasPrefix(tr.ClientID, "alice-") {
			t.Errorf("clientId = %q, want %q", tr.ClientID, tc.wantCID)
		}
		if tr.Username != "alice" || tr.Host != "broker.example" || tr.Port != 1883 || tr.KeepAlive != 30 ||
			tr.ExpiresAt != t0.Add(10*time.Minute).Unix() {
			t.Errorf("response = %+v", tr)
		}
		c, err := f.verifier.Verify(tr.Password, t0)
		if err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
		if c.Subject != "alice" || c.ClientID != tr.ClientID || !c.Compile().CanPublish("chat/alice") {
			t.Errorf("claims = %+v", c)
		}
	}
}

func TestTokenAPIErrors(t *testing.T) {
	t.Parallel()
	f := newAPI(t, RateLimit{}, RateLimit{})
	tests := []struct {
		name, method, query, key, body string
		status                         int
		code                           string
	}{
		{"no key", http.MethodGet, "", "", "", 401, CodeUnauthorized},
		{"wrong key", http.MethodGet, "", "ck_wrong", "", 401, CodeUnauthorized},
		{"key of other case", http.MethodGet, "", strings.ToUpper(aliceKey), "", 401, CodeUnauthorized},
		{"identity without policy", http.MethodGet, "", bobKey, "", 403, CodeForbidden},
		{"client id of someone else", http.MethodGet, "?clientId=bob-1", aliceKey, "", 403, CodeForbidden},
		{"bad body", http.MethodPost, "", aliceKey, "{", 400, CodeBadRequest},
		{"wrong method", http.MethodDelete, "", aliceKey, "", 405, CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, tt.method, tt.query, tt.key, tt.body)
			if resp.StatusCode != tt.status || errorCode(t, body) != tt.code {
				t.Fatalf("status %d body %s; want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if strings.Contains(string(body), "password") {
				t.Fatalf("error leaks a token: %s", body)
			}
		})
	}
}

// TestTokenAPIFlood sends thousands of requests from one identity: only the
// burst gets tokens, every other answer is 429 with Retry-After, and after
// the refill time one more token is issued.
func TestTokenAPIFlood(t *testing.T) {
	t.Parallel()
	f := newAPI(t, RateLimit{Rate: 1, Burst: 5}, RateLimit{})
	const n = 2000
	var ok, limited int
	for i := 0; i < n; i++ {
		resp, body := f.do(t, http.MethodGet, "", aliceKey, "")
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if errorCode(t, body) != CodeRateLimited {
				t.Fatalf("429 body %s", body)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if ok != 5 || limited != n-5 {
		t.Fatalf("ok=%d limited=%d, want 5 and %d", ok, limited, n-5)
	}
	// Another identity is not affected by alice's flood.
	if resp, _ := f.do(t, http.MethodGet, "", bobKey, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob after alice's flood: %d, want 403 (no policy, but not limited)", resp.StatusCode)
	}
	f.clock.Add(time.Second)
	if resp, _ := f.do(t, http.MethodGet, "", aliceKey, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("after refill: %d", resp.StatusCode)
	}
}

// TestTokenAPIAddressLimit: wrong keys from one address are limited before
// authentication.
func TestTokenAPIAddressLimit(t *testing.T) {
	t.Parallel()
	f := newAPI(t, RateLimit{}, RateLimit{Rate: 1, Burst: 3})
	var codes []int
	for range 6 {
		resp, _ := f.do(t, http.MethodGet, "", "ck_guess", "")
		codes = append(codes, resp.StatusCode)
	}
	want := []int{401, 401, 401, 429, 429, 429}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("codes = %v, want %v", codes, want)
	}
}

func TestKeyedLimiterBounded(t *testing.T) {
	t.Parallel()
	kl := newKeyedLimiter(RateLimit{Rate: 1, Burst: 1}, 3)
	for i := range 3 {
		if d := kl.allow(fmt.Sprint(i), t0); d != 0 {
			t.Fatalf("key %d refused", i)
		}
	}
	if d := kl.allow("new", t0); d == 0 {
		t.Fatal("full table admitted a new key")
	}
	if d := kl.allow("new", t0.Add(time.Second)); d != 0 {
		t.Fatalf("after refill the idle buckets should be swept: %v", d)
	}
	if len(kl.m) > 3 {
		t.Fatalf("table grew to %d", len(kl.m))
	}
}

// TestTokenAPIClientAddr: behind a proxy the per-address limit keys on the
// address ClientAddr reports, not on the proxy's.
func TestTokenAPIClientAddr(t *testing.T) {
	t.Parallel()
	ks := mustKeySet(t, "k1", mustKey(t, "k1"))
	iss, _ := NewIssuer(IssuerOptions{Keys: ks})
	authn, _ := NewAPIKeyAuthenticator(nil)
	api, err := NewTokenAPI(TokenAPIOptions{
		Authenticator: authn, Issuer: iss,
		PerAddress: RateLimit{Rate: 1, Burst: 1},
		ClientAddr: func(r *http.Request) string { return r.Header.Get("X-Real-IP") },
		Now:        func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string][]int{}
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"} {
		req := httptest.NewRequest(http.MethodGet, TokenPath, nil)
		req.Header.Set("X-Real-IP", ip)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		codes[ip] = append(codes[ip], rec.Code)
	}
	for ip, got := range codes {
		if fmt.Sprint(got) != "[401 429]" {
			t.Errorf("%s: %v, want [401 429]", ip, got)
		}
	}
}

func TestNewAPIKeyEntry(t *testing.T) {
	t.Parallel()
	key, entry, err := NewAPIKeyEntry("svc")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAPIKeyAuthenticator([]APIKeyEntry{entry})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, TokenPath, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if id, err := a.Authenticate(req); err != nil || id != "svc" {
		t.Fatalf("Authenticate = %q, %v", id, err)
	}
	if strings.Contains(entry.SHA256, key) {
		t.Fatal("entry holds the key")
	}
	if _, _, err := NewAPIKeyEntry("a/b"); err == nil {
		t.Fatal("invalid identity accepted")
	}
}

func TestTokenAPIOnResult(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		results []TokenAPIResult
	)
	f := newAPIWith(t, RateLimit{Rate: 1, Burst: 1}, RateLimit{}, func(r TokenAPIResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	f.do(t, http.MethodGet, "?clientId=alice-x", aliceKey, "")
	f.do(t, http.MethodGet, "", aliceKey, "")
	f.do(t, http.MethodGet, "", "ck_nope", "")
	mu.Lock()
	defer mu.Unlock()
	want := []TokenAPIResult{
		{Status: 200, Identity: "alice", ClientID: "alice-x"},
		{Status: 429, Code: CodeRateLimited, Identity: "alice"},
		{Status: 401, Code: CodeUnauthorized},
	}
	if len(results) != len(want) {
		t.Fatalf("results %+v", results)
	}
	for i, w := range want {
		r := results[i]
		r.Remote = ""
		if r != w {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
	}
}
