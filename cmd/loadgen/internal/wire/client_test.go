package wire_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

func connect(t *testing.T, ctx context.Context, broker string, o wire.ConnectOptions, h wire.Handler) *wire.Client {
	t.Helper()
	d, err := wire.NewDialer(broker, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.Connect(ctx, conn, o, h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	srv := testbroker.Start(t)
	for _, v := range []byte{wire.V311, wire.V5} {
		for _, qos := range []byte{0, 1, 2} {
			for _, url := range []string{"tcp://" + srv.TCPAddr, srv.WSURL} {
				t.Run(fmt.Sprintf("v%d/qos%d/%s", v, qos, url[:2]), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					const n = 50
					got := make(chan string, n)
					sub := connect(t, ctx, url, wire.ConnectOptions{Version: v, ClientID: "sub-" + t.Name(), CleanStart: true}, wire.Handler{
						OnPublish: func(m *wire.Message) { got <- string(m.Payload) },
					})
					defer sub.Close()
					if err := sub.Subscribe(ctx, qos, "rt/#"); err != nil {
						t.Fatal(err)
					}
					acks := make(chan int64, n)
					pub := connect(t, ctx, url, wire.ConnectOptions{Version: v, ClientID: "pub-" + t.Name(), CleanStart: true, Keepalive: 1, Inflight: 4}, wire.Handler{
						OnAck: func(id uint16, stamp int64, reason byte) { acks <- stamp },
					})
					defer pub.Close()
					for i := range n {
						if _, err := pub.Publish(ctx, "rt/x", qos, []byte(fmt.Sprint(i)), int64(i+1), i%7 == 0); err != nil {
							t.Fatal(err)
						}
					}
					if err := pub.Flush(); err != nil {
						t.Fatal(err)
					}
					for i := range n {
						select {
						case p := <-got:
							if p != fmt.Sprint(i) {
								t.Fatalf("message %d: got %q", i, p)
							}
						case <-ctx.Done():
							t.Fatalf("got %d of %d messages", i, n)
						}
					}
					if qos == 0 {
						return
					}
					sum := int64(0)
					for range n {
						select {
						case s := <-acks:
							sum += s
						case <-ctx.Done():
							t.Fatal("acks missing")
						}
					}
					if want := int64(n * (n + 1) / 2); sum != want {
						t.Fatalf("ack stamps sum %d, want %d", sum, want)
					}
				})
			}
		}
	}
}

func TestRefusedIsNotAuthorized(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithPassword("right"))
	for _, v := range []byte{wire.V311, wire.V5} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, _ := wire.NewDialer(srv.TCPAddr, nil, nil)
		conn, err := d.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = wire.Connect(ctx, conn, wire.ConnectOptions{Version: v, ClientID: "x", Username: "u", Password: "wrong"}, wire.Handler{})
		cancel()
		var ce *wire.ConnackError
		if !errors.As(err, &ce) || !errors.Is(err, wire.ErrNotAuthorized) {
			t.Fatalf("v%d: got %v, want not authorized", v, err)
		}
		c := connect(t, context.Background(), srv.TCPAddr, wire.ConnectOptions{Version: v, ClientID: "y", Username: "u", Password: "right"}, wire.Handler{})
		c.Close()
	}
}

func TestCloseReportsServerGone(t *testing.T) {
	srv := testbroker.Start(t)
	closed := make(chan error, 1)
	c := connect(t, context.Background(), srv.TCPAddr, wire.ConnectOptions{ClientID: "gone"}, wire.Handler{
		OnClose: func(err error) { closed <- err },
	})
	srv.Stop(t)
	select {
	case err := <-closed:
		if err == nil {
			t.Fatal("OnClose got nil after the server went away")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnClose after the server stopped")
	}
	if c.Err() == nil {
		t.Fatal("Err is nil")
	}
}

func TestBadBrokerURL(t *testing.T) {
	for _, s := range []string{"foo://a:1", "tcp://nohost", "ws://"} {
		if _, err := wire.NewDialer(s, nil, nil); !errors.Is(err, wire.ErrBadBrokerURL) {
			t.Errorf("%q: got %v", s, err)
		}
	}
}
