package load_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

func connConfig(broker string, n int) load.Config {
	cfg := load.DefaultConfig()
	cfg.Scenario = load.Conn
	cfg.Broker = broker
	cfg.Conns = n
	cfg.ConnRate = 0
	cfg.Hold = 100 * time.Millisecond
	cfg.Keepalive = time.Second
	cfg.SampleInterval = 50 * time.Millisecond
	cfg.ClientPrefix = fmt.Sprintf("c%d-", time.Now().UnixNano())
	return cfg
}

func TestConnRampHoldClose(t *testing.T) {
	srv := testbroker.Start(t)
	cases := []struct {
		name       string
		version    byte
		rate       float64
		persistent bool
	}{
		{"v5-unpaced", wire.V5, 0, false},
		{"v311-paced", wire.V311, 400, false},
		{"v5-persistent", wire.V5, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := connConfig(srv.TCPAddr, 40)
			cfg.Version, cfg.ConnRate, cfg.Persistent = tc.version, tc.rate, tc.persistent
			res := run(t, cfg)
			c := res.Conns
			if c.Attempts != 40 || c.Connected != 40 || c.Peak != 40 || c.Dropped != 0 {
				t.Fatalf("attempts %d connected %d peak %d dropped %d, want 40/40/40/0", c.Attempts, c.Connected, c.Peak, c.Dropped)
			}
			if res.Connect == nil || res.Connect.Count != 40 || res.ConnectService.Count != 40 {
				t.Fatalf("connect histograms %+v %+v", res.Connect, res.ConnectService)
			}
			if res.Corrected != (tc.rate > 0) || c.ConnectRate <= 0 {
				t.Fatalf("corrected %v rate %v", res.Corrected, c.ConnectRate)
			}
			if tc.rate > 0 && c.RampSeconds < 39/tc.rate {
				t.Fatalf("a ramp of 40 at %v/s took %vs", tc.rate, c.RampSeconds)
			}
			if res.Stopped != "" {
				t.Fatalf("stopped: %s", res.Stopped)
			}
		})
	}
}

func TestConnChurn(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := connConfig(srv.TCPAddr, 10)
	cfg.Hold = time.Second
	cfg.Churn = 6000 // 100% per second: one every 100 ms here
	res := run(t, cfg)
	c := res.Conns
	if c.Churned == 0 || c.Connected != 10+c.Churned || c.Dropped != 0 || c.Attempts != c.Connected {
		t.Fatalf("churned %d connected %d dropped %d attempts %d", c.Churned, c.Connected, c.Dropped, c.Attempts)
	}
}

func TestConnAuthErrorsAreCounted(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithPassword("right"))
	for _, v := range []byte{wire.V311, wire.V5} {
		cfg := connConfig(srv.TCPAddr, 5)
		cfg.Version = v
		cfg.Username, cfg.Password = "u", "wrong"
		res, err := load.Run(context.Background(), cfg)
		if !errors.Is(err, load.ErrNotConnected) {
			t.Fatalf("v%d: err %v, want ErrNotConnected", v, err)
		}
		if res.Conns.AuthErrors != 5 || res.Conns.Connected != 0 {
			t.Fatalf("v%d: auth errors %d connected %d", v, res.Conns.AuthErrors, res.Conns.Connected)
		}
	}
}

func TestConnReportsDialErrors(t *testing.T) {
	srv := testbroker.Start(t)
	addr := srv.TCPAddr
	srv.Stop(t) // nothing listens there now
	cfg := connConfig(addr, 3)
	res, err := load.Run(context.Background(), cfg)
	if !errors.Is(err, load.ErrNotConnected) || res.Conns.DialErrors != 3 {
		t.Fatalf("err %v dial errors %d", err, res.Conns.DialErrors)
	}
}

// tokenAPI is a real in-memory token API: one password per client id.
type tokenAPI struct {
	calls atomic.Int64
	gate  chan struct{} // when set, requests wait for it to close
}

func (a *tokenAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	if a.gate != nil {
		<-a.gate
	}
	if r.Header.Get("Authorization") != "Bearer k3y" {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	id := r.URL.Query().Get("clientId")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"clientId": id, "username": "user", "password": "right",
		"expiresAt": time.Now().Add(time.Hour).Format(time.RFC3339),
	})
}

func TestConnWithTokenAPI(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithPassword("right"))
	api := &tokenAPI{}
	ts := httptest.NewServer(api)
	defer ts.Close()
	cfg := connConfig(srv.TCPAddr, 8)
	cfg.TokenURL, cfg.TokenKey = ts.URL+"/v1/token", "k3y"
	res := run(t, cfg)
	if res.Conns.Connected != 8 || res.Conns.TokenCalls != 8 || api.calls.Load() != 8 {
		t.Fatalf("connected %d token calls %d (api saw %d)", res.Conns.Connected, res.Conns.TokenCalls, api.calls.Load())
	}
	cfg.TokenKey = "wrong"
	res, err := load.Run(context.Background(), cfg)
	if !errors.Is(err, load.ErrNotConnected) || res.Conns.TokenErrors != 8 {
		t.Fatalf("err %v token errors %d", err, res.Conns.TokenErrors)
	}
}

func TestTokenSourceSingleFlight(t *testing.T) {
	api := &tokenAPI{gate: make(chan struct{})}
	ts := httptest.NewServer(api)
	defer ts.Close()
	src := load.NewTokenSourceForTest(ts.URL+"/v1/token?clientId={clientId}", "k3y")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := src.Get(context.Background(), "same")
			if err == nil && c.Password != "right" {
				err = fmt.Errorf("password %q", c.Password)
			}
			errs <- err
		}()
	}
	// Let the first request in, then release it; the other nine share it.
	deadline := time.After(5 * time.Second)
	for api.calls.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("no token request")
		case <-time.After(time.Millisecond):
		}
	}
	close(api.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := api.calls.Load(); n != 1 {
		t.Fatalf("%d token requests for one client id, want 1", n)
	}
	if _, err := src.Get(context.Background(), "same"); err != nil || api.calls.Load() != 1 {
		t.Fatalf("cached get: err %v calls %d", err, api.calls.Load())
	}
	src.Invalidate("same")
	if _, err := src.Get(context.Background(), "same"); err != nil || api.calls.Load() != 2 {
		t.Fatalf("after invalidate: err %v calls %d", err, api.calls.Load())
	}
}

func TestConnSamplesBrokerMetrics(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := connConfig(srv.TCPAddr, 12)
	cfg.Hold = 500 * time.Millisecond
	cfg.OpsAddr = srv.OpsURL
	res := run(t, cfg)
	var maxConns, maxGoroutines float64
	for _, s := range res.Series {
		maxConns = max(maxConns, s.BrokerConns)
		maxGoroutines = max(maxGoroutines, s.BrokerGoroutines)
	}
	if maxConns != 12 || maxGoroutines <= 0 {
		t.Fatalf("broker connections peaked at %v, goroutines %v; want 12 and some (series %+v)", maxConns, maxGoroutines, res.Series)
	}
}

func TestConnSpreadsSourceAddresses(t *testing.T) {
	srv := testbroker.Start(t)
	p := startProxy(t, srv.TCPAddr, func(_ int, f []byte) [][]byte { return [][]byte{f} })
	cfg := connConfig(p.addr, 12)
	ips, err := load.ParseIPs("127.0.0.2-127.0.0.4")
	if err != nil || len(ips) != 3 {
		t.Fatalf("parse: %v %v", ips, err)
	}
	cfg.SourceIPs = ips
	res := run(t, cfg)
	if res.Conns.Connected != 12 {
		t.Fatalf("connected %d", res.Conns.Connected)
	}
	got := p.sources()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if got[ip] != 4 {
			t.Fatalf("connections by source address %v, want 4 from each of 127.0.0.2-4", got)
		}
	}
}

func TestParseIPsRejectsBadRanges(t *testing.T) {
	for _, s := range []string{"127.0.0.9-127.0.0.1", "127.0.0.1-127.0.1.2", "nope", "::1"} {
		if _, err := load.ParseIPs(s); !errors.Is(err, load.ErrConfig) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestLimitReasons(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, "open-file limit"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, "--source-ips"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ""},
	}
	for _, tc := range cases {
		got := load.LimitReason(tc.err)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: got %q, want it to mention %q", tc.err, got, tc.want)
		}
	}
}
