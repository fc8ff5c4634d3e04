package load_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
)

// stormRun runs a storm whose outage is a broker restart done by the test
// goroutine (testbroker needs t on the test goroutine), with change applied
// while the broker is down.
func stormRun(t *testing.T, srv *testbroker.Server, cfg load.Config, change func()) (*load.Result, error) {
	t.Helper()
	outage, restarted := make(chan struct{}), make(chan struct{})
	cfg.Outage = func(ctx context.Context) error {
		select {
		case outage <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-restarted:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	type out struct {
		res *load.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := load.Run(context.Background(), cfg)
		done <- out{res, err}
	}()
	select {
	case <-outage:
	case o := <-done:
		t.Fatalf("run ended before the outage: %v", o.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no outage")
	}
	srv.Stop(t)
	if change != nil {
		change()
	}
	srv.Restart(t)
	close(restarted)
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(30 * time.Second):
		t.Fatal("storm did not end")
	}
	return nil, nil
}

func stormConfig(addr string, n int) load.Config {
	cfg := connConfig(addr, n)
	cfg.Scenario = load.Storm
	cfg.StormTimeout = 10 * time.Second
	cfg.ReconnectMin = 10 * time.Millisecond
	cfg.ReconnectMax = 100 * time.Millisecond
	// mochi can accept a connection while it shuts down and never answer it:
	// a short handshake timeout lets that client retry.
	cfg.ConnectTimeout = time.Second
	return cfg
}

func TestStormAllComeBack(t *testing.T) {
	srv := testbroker.Start(t)
	res, err := stormRun(t, srv, stormConfig(srv.TCPAddr, 25), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Storm
	if s.Dropped != 25 || s.Recovered != 25 || s.NotBack != 0 || s.AllBackSecs < 0 || s.AuthErrors != 0 {
		t.Fatalf("storm %+v", s)
	}
	if s.Attempts < 25 || s.Reconnect == nil || s.Reconnect.Count != 25 {
		t.Fatalf("attempts %d reconnect histogram %+v", s.Attempts, s.Reconnect)
	}
	if res.Stopped != "" {
		t.Fatalf("stopped: %s", res.Stopped)
	}
}

func TestStormCountsAuthErrors(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithPassword("before"))
	cfg := stormConfig(srv.TCPAddr, 5)
	cfg.Username, cfg.Password = "u", "before"
	cfg.StormTimeout = 500 * time.Millisecond
	res, err := stormRun(t, srv, cfg, func() { srv.SetPassword("after") })
	if err != nil {
		t.Fatal(err)
	}
	s := res.Storm
	if s.Dropped != 5 || s.NotBack != 5 || s.Recovered != 0 || s.AuthErrors == 0 || s.AllBackSecs != -1 {
		t.Fatalf("storm %+v", s)
	}
	if res.Stopped == "" {
		t.Fatal("a storm that did not recover must say so")
	}
}

func TestStormOutageError(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := stormConfig(srv.TCPAddr, 2)
	boom := errors.New("boom")
	cfg.Outage = func(context.Context) error { return boom }
	cfg.StormTimeout = 200 * time.Millisecond
	res, err := load.Run(context.Background(), cfg)
	if !errors.Is(err, load.ErrOutage) || !errors.Is(err, boom) || res.Storm.OutageError != "boom" {
		t.Fatalf("err %v", err)
	}
}

func TestStormWaitsForTheOutage(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := stormConfig(srv.TCPAddr, 10)
	cfg.Outage = nil // loadgen waits for the broker to go away
	outage := make(chan struct{})
	var once sync.Once
	type out struct {
		res *load.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := load.Run(context.Background(), cfg, load.WithProgress(func(p load.Progress) {
			if p.Phase == "outage" {
				once.Do(func() { close(outage) })
			}
		}))
		done <- out{res, err}
	}()
	select {
	case <-outage:
	case <-time.After(20 * time.Second):
		t.Fatal("never reached the outage phase")
	}
	srv.Restart(t)
	var o out
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("storm did not end")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	s := o.res.Storm
	if s.Dropped != 10 || s.Recovered != 10 || s.AllBackSecs < 0 {
		t.Fatalf("storm %+v", s)
	}
	if d := o.res.Conns.DropReasons; len(d) == 0 {
		t.Fatalf("no drop reasons: %+v", o.res.Conns)
	}
}
