package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// tokenServer is a real HTTP token API; status and body are settable.
type tokenServer struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	status  int
	body    string
	release chan struct{} // when set, requests wait for it
	arrived chan struct{} // gets a value per request (when there is room)
	header  http.Header
}

func newTokenServer(t *testing.T, body string) *tokenServer {
	ts := &tokenServer{status: http.StatusOK, body: body, arrived: make(chan struct{}, 1)}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		select {
		case ts.arrived <- struct{}{}:
		default:
		}
		ts.mu.Lock()
		status, b, rel := ts.status, ts.body, ts.release
		ts.header = r.Header.Clone()
		ts.mu.Unlock()
		if rel != nil {
			<-rel
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) set(status int, body string) {
	ts.mu.Lock()
	ts.status, ts.body = status, body
	ts.mu.Unlock()
}

func fastRetry() client.TokenOption {
	return client.WithTokenRetry(3, time.Millisecond, 5*time.Millisecond)
}

func TestTokenAPIMapsAndCaches(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, `{"clientId":"c1","username":"u","password":"p","host":"127.0.0.1","port":1883,"cleanSession":true,"keepAlive":30,"expiresAt":"2999-01-01T00:00:00Z"}`)
	tok, err := client.NewTokenAPI(ts.URL, client.WithTokenHeader(http.Header{"Authorization": {"Bearer app"}}), fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tok.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cc.ClientID != "c1" || cc.Username != "u" || cc.Password != "p" || cc.Host != "127.0.0.1" || cc.Port != 1883 ||
		cc.KeepAlive != 30*time.Second || cc.CleanSession == nil || !*cc.CleanSession || cc.ExpiresAt.Year() != 2999 {
		t.Fatalf("mapped %+v", cc)
	}
	ts.mu.Lock()
	auth := ts.header.Get("Authorization")
	ts.mu.Unlock()
	if auth != "Bearer app" {
		t.Fatalf("caller header not sent: %q", auth)
	}
	again, _ := tok.Credentials(context.Background())
	if again != cc || ts.hits.Load() != 1 {
		t.Fatalf("cache miss: %d fetches", ts.hits.Load())
	}
	// Invalidating stale credentials (not the cached ones) does nothing.
	tok.Invalidate(&client.ConnectCredentials{})
	if _, _ = tok.Credentials(context.Background()); ts.hits.Load() != 1 {
		t.Fatal("invalidating other credentials refetched")
	}
	tok.Invalidate(cc)
	if _, _ = tok.Credentials(context.Background()); ts.hits.Load() != 2 {
		t.Fatalf("invalidate did not force a refresh: %d fetches", ts.hits.Load())
	}
}

func TestTokenAPIExpiredIsRefetched(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, `{"username":"u","password":"p","expiresAt":1}`)
	tok, _ := client.NewTokenAPI(ts.URL, fastRetry())
	for range 2 {
		if _, err := tok.Credentials(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.hits.Load(); n != 2 {
		t.Fatalf("expired credentials served from cache: %d fetches", n)
	}
}

func TestTokenAPISingleFlight(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, `{"username":"u","password":"p"}`)
	release := make(chan struct{})
	ts.mu.Lock()
	ts.release = release
	ts.mu.Unlock()
	tok, _ := client.NewTokenAPI(ts.URL, fastRetry())
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tok.Credentials(ctxT(t))
			errs <- err
		}()
	}
	// Let the one request through once it arrived.
	select {
	case <-ts.arrived:
	case <-time.After(waitFor):
		t.Fatal("no token request")
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if h := ts.hits.Load(); h != 1 {
		t.Fatalf("%d concurrent callers made %d requests, want 1", n, h)
	}
}

func TestTokenAPIRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		wantHits int64
		wantErr  error
	}{
		{"5xx retried then gives up", http.StatusServiceUnavailable, 4, client.ErrTokenAPI},
		{"4xx not retried", http.StatusUnauthorized, 1, client.ErrTokenRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, "")
			ts.set(tt.status, "no")
			tok, _ := client.NewTokenAPI(ts.URL, fastRetry())
			_, err := tok.Credentials(ctxT(t))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			var he *client.TokenHTTPError
			if !errors.As(err, &he) || he.StatusCode != tt.status {
				t.Fatalf("error %v does not carry status %d", err, tt.status)
			}
			if h := ts.hits.Load(); h != tt.wantHits {
				t.Fatalf("%d requests, want %d", h, tt.wantHits)
			}
		})
	}
}

func TestTokenAPIRecoversAfterTransientFailure(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(`{"username":"u","password":"p"}`))
	}))
	t.Cleanup(srv.Close)
	tok, _ := client.NewTokenAPI(srv.URL, fastRetry())
	cc, err := tok.Credentials(ctxT(t))
	if err != nil || cc.Username != "u" || hits.Load() != 3 {
		t.Fatalf("cc %+v err %v hits %d", cc, err, hits.Load())
	}
}

func TestTokenAPICustomMapper(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, `{"token":"abc"}`)
	tok, _ := client.NewTokenAPI(ts.URL, client.WithTokenMapper(func(b []byte) (*client.ConnectCredentials, error) {
		return &client.ConnectCredentials{Username: "jwt", Password: string(b)}, nil
	}))
	cc, err := tok.Credentials(ctxT(t))
	if err != nil || cc.Password != `{"token":"abc"}` {
		t.Fatalf("cc %+v err %v", cc, err)
	}
	if _, err := client.NewTokenAPI("::bad"); !errors.Is(err, client.ErrInvalidOption) {
		t.Fatalf("bad url accepted: %v", err)
	}
}

func TestHundredClientsShareOneTokenFetch(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	h, p := hostPort(t, srv.TCPAddr)
	// The token API also hands out the broker address.
	ts := newTokenServer(t, fmt.Sprintf(`{"username":"u","password":"p","host":%q,"port":%d,"keepAlive":30}`, h, p))
	release := make(chan struct{})
	ts.mu.Lock()
	ts.release = release
	ts.mu.Unlock()
	tok, err := client.NewTokenAPI(ts.URL, fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	clients := make([]*client.Client, n)
	for i := range clients {
		c, err := client.NewClient(client.WithTokenAPI(tok), client.WithClientID(fmt.Sprintf("tok-%d", i)),
			client.WithBackoff(fastBackoff), client.WithCleanSession(true))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		clients[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Start()
		}()
	}
	select {
	case <-ts.arrived:
	case <-time.After(waitFor):
		t.Fatal("no token request")
	}
	close(release)
	wg.Wait()
	for _, c := range clients {
		awaitConnected(t, c)
	}
	if f := tok.Fetches(); f != 1 {
		t.Fatalf("%d clients made %d token requests, want 1", n, f)
	}
	if ka := getInfo(t, clients[0]).KeepAlive; ka != 30 {
		t.Fatalf("token keepalive not applied: %d", ka)
	}
}
