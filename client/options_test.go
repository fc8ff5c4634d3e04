package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/client"
)

type staticCreds struct{}

func (staticCreds) Credentials(context.Context) (*client.Credential, error) {
	return &client.Credential{Username: "u", Password: "p"}, nil
}

type staticResolver struct{ ch chan []client.TCPAddress }

func (r staticResolver) UpdateChan() <-chan []client.TCPAddress { return r.ch }
func (r staticResolver) Done() <-chan struct{}                  { return nil }

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	tok, err := client.NewTokenAPI("http://127.0.0.1:1/token")
	if err != nil {
		t.Fatal(err)
	}
	addr := client.WithAddress("127.0.0.1", 1883)
	tests := []struct {
		name string
		opts []client.Option
		want error
	}{
		{"no address", nil, client.ErrNoAddress},
		{"ok", []client.Option{addr}, nil},
		{"fetcher and token api", []client.Option{addr, client.WithCredentialFetcher(staticCreds{}), client.WithTokenAPI(tok)}, client.ErrConflictingOptions},
		{"password and fetcher", []client.Option{addr, client.WithPassword("x"), client.WithCredentialFetcher(staticCreds{})}, client.ErrConflictingOptions},
		{"username and token api", []client.Option{client.WithUsername("x"), client.WithTokenAPI(tok)}, client.ErrConflictingOptions},
		{"resolver and address", []client.Option{addr, client.WithResolver(staticResolver{})}, client.ErrConflictingOptions},
		{"backoff and backoff bounds", []client.Option{addr, client.WithBackoff(func(int) time.Duration { return 0 }), client.WithReconnectBackoff(time.Millisecond, time.Second)}, client.ErrConflictingOptions},
		{"bad url scheme", []client.Option{client.WithBrokerURL("http://127.0.0.1:80")}, client.ErrInvalidOption},
		{"ws url", []client.Option{client.WithBrokerURL("ws://127.0.0.1:80/mqtt")}, nil},
		{"negative keepalive", []client.Option{addr, client.WithKeepAlive(-time.Second)}, client.ErrInvalidOption},
		{"backoff max below min", []client.Option{addr, client.WithReconnectBackoff(time.Second, time.Millisecond)}, client.ErrInvalidOption},
		{"zero connect timeout", []client.Option{addr, client.WithConnectTimeout(0)}, client.ErrInvalidOption},
		{"will without topic", []client.Option{addr, client.WithWill(client.Will{})}, client.ErrInvalidOption},
		{"negative offline buffer", []client.Option{addr, client.WithOfflineBuffer(-1, client.DropOldest)}, client.ErrInvalidOption},
		{"retention without size", []client.Option{addr, client.WithUnmatchedRetention(time.Minute, 0)}, client.ErrInvalidOption},
		{"retention", []client.Option{addr, client.WithUnmatchedRetention(360*time.Second, 1000)}, nil},
		{"token api alone", []client.Option{client.WithTokenAPI(tok)}, nil},
		{"resolver alone", []client.Option{client.WithResolver(staticResolver{})}, nil},
		{"multi-connection mode", []client.Option{client.WithResolver(staticResolver{}), client.UseMultiConnectionMode, client.WithPoolSize(2), client.SharedSubscriptionPredicate(client.IsSharedSubscription)}, nil},
		{"multi-connection mode without resolver", []client.Option{addr, client.UseMultiConnectionMode}, client.ErrConflictingOptions},
		{"multi-connection mode and token api", []client.Option{client.WithResolver(staticResolver{}), client.UseMultiConnectionMode, client.WithTokenAPI(tok)}, client.ErrConflictingOptions},
		{"multi-connection mode and persistence", []client.Option{client.WithResolver(staticResolver{}), client.UseMultiConnectionMode, client.WithPersistence(t.TempDir())}, client.ErrConflictingOptions},
		{"pool size without multi-connection mode", []client.Option{client.WithResolver(staticResolver{}), client.WithPoolSize(2)}, client.ErrConflictingOptions},
		{"predicate without multi-connection mode", []client.Option{addr, client.SharedSubscriptionPredicate(client.IsSharedSubscription)}, client.ErrConflictingOptions},
		{"zero pool size", []client.Option{client.WithResolver(staticResolver{}), client.UseMultiConnectionMode, client.WithPoolSize(0)}, client.ErrInvalidOption},
		{"nil predicate", []client.Option{client.WithResolver(staticResolver{}), client.UseMultiConnectionMode, client.SharedSubscriptionPredicate(nil)}, client.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.NewClient(tt.opts...)
			if tt.want == nil {
				if err != nil || c == nil {
					t.Fatalf("NewClient: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewClient error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := client.NewClient(client.WithKeepAlive(-1), client.WithConnectTimeout(0))
	for _, want := range []error{client.ErrNoAddress, client.ErrInvalidOption} {
		if !errors.Is(err, want) {
			t.Errorf("error %v does not include %v", err, want)
		}
	}
}

func TestFullJitterBackoff(t *testing.T) {
	t.Parallel()
	b := client.FullJitterBackoff(time.Second, 30*time.Second)
	if d := b(0); d != 0 {
		t.Fatalf("attempt 0 waits %s, want 0", d)
	}
	for attempt := 1; attempt <= 40; attempt++ {
		ceiling := 30 * time.Second
		if attempt < 6 {
			ceiling = time.Second << (attempt - 1)
		}
		for range 50 {
			d := b(attempt)
			if d < 500*time.Millisecond || d > ceiling {
				t.Fatalf("attempt %d: %s outside [500ms, %s]", attempt, d, ceiling)
			}
		}
	}
	// Jitter: many draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[b(10)] = true
	}
	if len(seen) < 2 {
		t.Fatal("backoff has no jitter")
	}
}

func TestMatchTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a/b/c", true},
		{"a/#", "a", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/b", "$SYS/b", false},
		{"+/+", "a/b", true},
		{"a/+/c", "a//c", true},
		{"$share/g/a/+", "a/b", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
	}
	for _, tt := range tests {
		if got := client.MatchTopic(tt.filter, tt.topic); got != tt.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestCodecs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"bytes raw", []byte("raw\x00"), "raw\x00"},
		{"string raw", "hello", "hello"},
		{"map json", map[string]int{"time": 1}, `{"time":1}`},
		{"struct json", struct {
			V int `json:"value"`
		}{42}, `{"value":42}`},
	}
	for _, tt := range tests {
		b, err := client.DefaultEncoder(ctx, tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: encode = %q, %v; want %q", tt.name, b, err, tt.want)
		}
	}
	var s string
	if err := client.DefaultDecoder(ctx, []byte("x"), &s); err != nil || s != "x" {
		t.Errorf("decode string = %q, %v", s, err)
	}
	var v struct{ A int }
	if err := client.DefaultDecoder(ctx, []byte(`{"A":3}`), &v); err != nil || v.A != 3 {
		t.Errorf("decode json = %+v, %v", v, err)
	}
	if err := client.Base64JSONDecoder(ctx, []byte("eyJBIjo0fQ=="), &v); err != nil || v.A != 4 {
		t.Errorf("decode base64 json = %+v, %v", v, err)
	}
	// A chain skips encoders answering ErrUnsupportedType.
	onlyInts := func(_ context.Context, v any) ([]byte, error) {
		if i, ok := v.(int); ok {
			return []byte{byte(i)}, nil
		}
		return nil, client.ErrUnsupportedType
	}
	enc := client.ChainEncoders(onlyInts, client.JSONEncoder)
	if b, _ := enc(ctx, 7); string(b) != "\x07" {
		t.Errorf("chain picked %q for int", b)
	}
	if b, _ := enc(ctx, "s"); string(b) != `"s"` {
		t.Errorf("chain picked %q for string", b)
	}
	if _, err := client.ChainEncoders(onlyInts)(ctx, "s"); !errors.Is(err, client.ErrUnsupportedType) {
		t.Errorf("exhausted chain error = %v", err)
	}
	if _, err := client.JSONEncoder(ctx, make(chan int)); err == nil {
		t.Error("JSON encoding a channel succeeded")
	}
}

func TestReasonCodeError(t *testing.T) {
	t.Parallel()
	err := error(&client.ReasonCodeError{Op: "publish", Topic: "a", Code: 0x87})
	if !errors.Is(err, client.ErrNotAuthorized) || errors.Is(err, client.ErrBadCredentials) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
	if code, ok := client.ReasonCode(err); !ok || code != 0x87 {
		t.Fatalf("ReasonCode = %x, %v", code, ok)
	}
}
