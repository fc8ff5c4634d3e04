package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Credentials are what a client presents in CONNECT.
type Credentials struct {
	ClientID string
	Username string
	Password string
	Expires  time.Time // zero: until the broker refuses them
}

// tokenSource fetches per-client credentials from a Courier token API
// (GET, bearer API key, JSON {"clientId","username","password","expiresAt",...}).
// Requests for one client id are single-flighted and the answer is cached
// until shortly before it expires or until Invalidate.
type tokenSource struct {
	url    string
	key    string
	client *http.Client
	group  singleflight.Group
	calls  atomic.Int64

	mu    sync.Mutex
	cache map[string]Credentials
}

func newTokenSource(rawURL, key string, timeout time.Duration) *tokenSource {
	return &tokenSource{url: rawURL, key: key, client: &http.Client{Timeout: timeout}, cache: map[string]Credentials{}}
}

func (s *tokenSource) urlFor(clientID string) string {
	if strings.Contains(s.url, "{clientId}") {
		return strings.ReplaceAll(s.url, "{clientId}", url.QueryEscape(clientID))
	}
	sep := "?"
	if strings.Contains(s.url, "?") {
		sep = "&"
	}
	return s.url + sep + "clientId=" + url.QueryEscape(clientID)
}

// Get returns credentials for clientID, from the cache or the token API.
func (s *tokenSource) Get(ctx context.Context, clientID string) (Credentials, error) {
	s.mu.Lock()
	c, ok := s.cache[clientID]
	s.mu.Unlock()
	if ok && (c.Expires.IsZero() || time.Until(c.Expires) > 5*time.Second) {
		return c, nil
	}
	v, err, _ := s.group.Do(clientID, func() (any, error) {
		c, err := s.fetch(ctx, clientID)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.cache[clientID] = c
		s.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return Credentials{}, err
	}
	return v.(Credentials), nil
}

// Invalidate drops the cached credentials of clientID (after the broker refused them).
func (s *tokenSource) Invalidate(clientID string) {
	s.mu.Lock()
	delete(s.cache, clientID)
	s.mu.Unlock()
}

func (s *tokenSource) fetch(ctx context.Context, clientID string) (Credentials, error) {
	s.calls.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.urlFor(clientID), nil)
	if err != nil {
		return Credentials{}, fmt.Errorf("%w: %w", ErrToken, err)
	}
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return Credentials{}, fmt.Errorf("%w: %w", ErrToken, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Credentials{}, fmt.Errorf("%w: read: %w", ErrToken, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Credentials{}, fmt.Errorf("%w: status %d", ErrToken, resp.StatusCode)
	}
	var r struct {
		ClientID  string          `json:"clientId"`
		Username  string          `json:"username"`
		Password  string          `json:"password"`
		ExpiresAt json.RawMessage `json:"expiresAt"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Credentials{}, fmt.Errorf("%w: decode: %w", ErrToken, err)
	}
	c := Credentials{ClientID: r.ClientID, Username: r.Username, Password: r.Password, Expires: parseExpiry(r.ExpiresAt)}
	if c.ClientID == "" {
		c.ClientID = clientID
	}
	return c, nil
}

// parseExpiry accepts an RFC 3339 string or Unix seconds; anything else is "no expiry".
func parseExpiry(raw json.RawMessage) time.Time {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
		raw = json.RawMessage(s)
	}
	if n, err := strconv.ParseFloat(string(raw), 64); err == nil && n > 0 {
		return time.Unix(int64(n), 0)
	}
	return time.Time{}
}
