package broker_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"go.uber.org/goleak"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStartShutdownHundredTimesLeavesNoGoroutine(t *testing.T) {
	dir := t.TempDir()
	for i := range 100 {
		cfg := brokertest.Config(dir)
		b, err := broker.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		// Prove it serves before stopping it.
		c := dialRaw(t, "tcp", b.Addr("tcp"))
		c.connect(4, "cycle", 30)
		if err := b.Shutdown(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("shutdown %d: %v", i, err)
		}
	}
	goleak.VerifyNone(t,
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*loggingT).flushDaemon"),
	)
}

func TestPortZeroReportsTheBoundAddress(t *testing.T) {
	srv := brokertest.Start(t)
	for _, name := range []string{"tcp", "ws", "ops"} {
		addr := srv.Broker.Addr(name)
		_, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" || port == "" {
			t.Fatalf("Addr(%q) = %q, want a bound port", name, addr)
		}
	}
	if got := srv.Broker.Addr("nope"); got != "" {
		t.Fatalf("Addr of an unknown listener = %q, want empty", got)
	}
}

func TestShutdownTwiceIsSafeAndReturnsTheSameResult(t *testing.T) {
	b, err := broker.New(brokertest.Config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("first shutdown: %v", err)
	}
	if err := b.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestStartAfterShutdownReturnsErrServerClosed(t *testing.T) {
	b, err := broker.New(brokertest.Config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, 10*time.Second)); !errors.Is(err, broker.ErrAlreadyStarted) {
		t.Fatalf("second Start = %v, want ErrAlreadyStarted", err)
	}
	if err := b.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, 10*time.Second)); !errors.Is(err, broker.ErrServerClosed) {
		t.Fatalf("Start after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestShutdownOfANeverStartedBrokerClosesIt(t *testing.T) {
	b, err := broker.New(brokertest.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(ctxT(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, time.Second)); !errors.Is(err, broker.ErrServerClosed) {
		t.Fatalf("Start = %v, want ErrServerClosed", err)
	}
}

func TestStartFailsCleanlyWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := brokertest.Config("")
	cfg.Listeners = append(cfg.Listeners, broker.ListenerConfig{Name: "busy", Type: broker.ListenerTCP, Addr: taken.Addr().String()})
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctxT(t, 10*time.Second)); err == nil {
		t.Fatal("Start succeeded on a taken port")
	}
	if err := b.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("Shutdown after a failed Start: %v", err)
	}
}

func TestShutdownWaitsForConnectedClientsAndTellsV5ClientsWhy(t *testing.T) {
	srv := brokertest.Start(t)
	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.connect(5, "leaving", 30)
	if err := srv.Broker.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	p, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatalf("want DISCONNECT before close, got %v", err)
	}
	if p.kind() != 14 || len(p.body) < 1 || p.body[0] != 0x8B {
		t.Fatalf("want DISCONNECT 0x8B server shutting down, got header %#x body %x", p.header, p.body)
	}
	c.expectClosed(5 * time.Second)
}

func TestShutdownBoundedByContextClosesHandshakingConnections(t *testing.T) {
	srv := brokertest.Start(t)
	// A connection that never sends CONNECT holds a handler goroutine.
	idle := dialRaw(t, "tcp", srv.TCPAddr)
	if err := srv.Broker.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	idle.expectClosed(5 * time.Second)
}
