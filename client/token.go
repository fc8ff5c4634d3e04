package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ConnectCredentials are the connect options a token API hands out.
type ConnectCredentials struct {
	ClientID     string
	Username     string
	Password     string
	Host         string
	Port         uint16
	CleanSession *bool
	KeepAlive    time.Duration
	ExpiresAt    time.Time
}

// TokenMapper turns a token API response body into connect options.
type TokenMapper func(body []byte) (*ConnectCredentials, error)

// DefaultTokenMapper reads the Courier token response:
// {"clientId","username","password","host","port","cleanSession","keepAlive","expiresAt"}
// with keepAlive in seconds and expiresAt as RFC 3339 or unix seconds.
func DefaultTokenMapper(body []byte) (*ConnectCredentials, error) {
	var r struct {
		ClientID     string          `json:"clientId"`
		Username     string          `json:"username"`
		Password     string          `json:"password"`
		Host         string          `json:"host"`
		Port         uint16          `json:"port"`
		CleanSession *bool           `json:"cleanSession"`
		KeepAlive    int             `json:"keepAlive"`
		ExpiresAt    json.RawMessage `json:"expiresAt"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: decode response: %w", ErrTokenAPI, err)
	}
	cc := &ConnectCredentials{
		ClientID: r.ClientID, Username: r.Username, Password: r.Password,
		Host: r.Host, Port: r.Port, CleanSession: r.CleanSession,
		KeepAlive: time.Duration(r.KeepAlive) * time.Second,
	}
	if len(r.ExpiresAt) > 0 && string(r.ExpiresAt) != "null" {
		var s string
		var n int64
		switch {
		case json.Unmarshal(r.ExpiresAt, &n) == nil:
			cc.ExpiresAt = time.Unix(n, 0)
		case json.Unmarshal(r.ExpiresAt, &s) == nil:
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("%w: expiresAt: %w", ErrTokenAPI, err)
			}
			cc.ExpiresAt = t
		default:
			return nil, fmt.Errorf("%w: expiresAt %s", ErrTokenAPI, r.ExpiresAt)
		}
	}
	return cc, nil
}

// TokenOption configures a TokenAPI.
type TokenOption interface{ applyToken(*TokenAPI) }

type tokenOptionFunc func(*TokenAPI)

func (f tokenOptionFunc) applyToken(t *TokenAPI) { f(t) }

// WithTokenHeader adds headers (the app's own auth) to every token request.
func WithTokenHeader(h http.Header) TokenOption {
	return tokenOptionFunc(func(t *TokenAPI) { t.header = h.Clone() })
}

// WithTokenHTTPClient sets the HTTP client for token requests.
func WithTokenHTTPClient(c *http.Client) TokenOption {
	return tokenOptionFunc(func(t *TokenAPI) { t.http = c })
}

// WithTokenMapper replaces DefaultTokenMapper.
func WithTokenMapper(m TokenMapper) TokenOption {
	return tokenOptionFunc(func(t *TokenAPI) { t.mapper = m })
}

// WithTokenRetry sets the auth retry policy: up to retries more tries after a
// failed request, waiting a full-jitter backoff from base doubling to maxDelay.
// A 4xx answer is never retried. Default 3 retries, 1 s to 30 s.
func WithTokenRetry(retries int, base, maxDelay time.Duration) TokenOption {
	return tokenOptionFunc(func(t *TokenAPI) { t.retries, t.retryBase, t.retryMax = retries, base, maxDelay })
}

// TokenAPI fetches connect credentials from a Courier token API (an HTTP GET
// returning JSON). Credentials are cached until the broker rejects them or they
// expire; concurrent requests for credentials share one HTTP request. A
// TokenAPI is safe for concurrent use and may be shared by many clients.
type TokenAPI struct {
	url       string
	header    http.Header
	http      *http.Client
	mapper    TokenMapper
	retries   int
	retryBase time.Duration
	retryMax  time.Duration

	mu       sync.Mutex
	cached   *ConnectCredentials
	inflight *tokenCall
	fetches  atomic.Int64
}

type tokenCall struct {
	done chan struct{}
	cc   *ConnectCredentials
	err  error
}

// NewTokenAPI returns a TokenAPI for url.
func NewTokenAPI(url string, opts ...TokenOption) (*TokenAPI, error) {
	t := &TokenAPI{url: url, http: http.DefaultClient, mapper: DefaultTokenMapper, retries: 3, retryBase: time.Second, retryMax: 30 * time.Second}
	for _, o := range opts {
		o.applyToken(t)
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil || req.URL.Host == "" {
		return nil, fmt.Errorf("%w: token api url %q", ErrInvalidOption, url)
	}
	if t.http == nil || t.mapper == nil || t.retries < 0 || t.retryBase <= 0 || t.retryMax < t.retryBase {
		return nil, fmt.Errorf("%w: token api options", ErrInvalidOption)
	}
	return t, nil
}

// Fetches returns how many HTTP requests the TokenAPI has made.
func (t *TokenAPI) Fetches() int64 { return t.fetches.Load() }

// Credentials returns the cached credentials or fetches new ones. Concurrent
// callers share one fetch; a caller whose ctx ends stops waiting, the fetch
// goes on for the others.
func (t *TokenAPI) Credentials(ctx context.Context) (*ConnectCredentials, error) {
	t.mu.Lock()
	if cc := t.cached; cc != nil && (cc.ExpiresAt.IsZero() || time.Now().Before(cc.ExpiresAt)) {
		t.mu.Unlock()
		return cc, nil
	}
	call := t.inflight
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		t.inflight = call
		go t.run(call)
	}
	t.mu.Unlock()
	select {
	case <-call.done:
		return call.cc, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Invalidate drops cc from the cache if it is still the cached value (the
// broker rejected it), so the next Credentials call fetches fresh ones. Many
// clients rejecting the same credentials cause one refresh.
func (t *TokenAPI) Invalidate(cc *ConnectCredentials) {
	t.mu.Lock()
	if t.cached == cc {
		t.cached = nil
	}
	t.mu.Unlock()
}

func (t *TokenAPI) run(call *tokenCall) {
	// The fetch is bounded by the retry policy and the HTTP client, not by any
	// one caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc, err := t.fetchWithRetry(ctx)
	t.mu.Lock()
	if err == nil {
		t.cached = cc
	}
	t.inflight = nil
	t.mu.Unlock()
	call.cc, call.err = cc, err
	close(call.done)
}

func (t *TokenAPI) fetchWithRetry(ctx context.Context) (*ConnectCredentials, error) {
	var err error
	for attempt := 0; attempt <= t.retries; attempt++ {
		if attempt > 0 {
			ceiling := t.retryMax
			if d := t.retryBase << (attempt - 1); d > 0 && d < ceiling {
				ceiling = d
			}
			timer := time.NewTimer(rand.N(ceiling) + 1)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil, fmt.Errorf("%w: %w", ErrTokenAPI, ctx.Err())
			}
		}
		var cc *ConnectCredentials
		cc, err = t.fetch(ctx)
		if err == nil {
			return cc, nil
		}
		if errors.Is(err, ErrTokenRejected) {
			return nil, err
		}
	}
	return nil, err
}

func (t *TokenAPI) fetch(ctx context.Context) (*ConnectCredentials, error) {
	t.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenAPI, err)
	}
	for k, vs := range t.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenAPI, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %w", ErrTokenAPI, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &TokenHTTPError{StatusCode: resp.StatusCode}
	}
	cc, err := t.mapper(body)
	if err != nil {
		return nil, err
	}
	if cc == nil {
		return nil, fmt.Errorf("%w: mapper returned no credentials", ErrTokenAPI)
	}
	return cc, nil
}

func (cc *ConnectCredentials) address() string {
	if cc == nil || cc.Host == "" || cc.Port == 0 {
		return ""
	}
	return TCPAddress{cc.Host, cc.Port}.String()
}
