package conformance_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// FuzzConnection sends arbitrary bytes as everything a client sends on one
// connection (CONNECT included) to a real broker, in two writes split where
// the fuzzer says. Whatever the bytes, the broker must not panic (the
// listeners' recover guard must never fire: no EventConnectionPanic), must
// close that connection once the client half-closes it, and must keep
// serving a client connected before: its PINGREQ is answered after every
// input.
//
// `go test` runs the corpus in testdata/fuzz/FuzzConnection; `make fuzz`
// explores for a bounded time.
func FuzzConnection(f *testing.F) {
	srv := start(f)
	panics := srv.Broker.Observe(16, broker.EventConnectionPanic)
	alive := mqtttest.Dial(f, srv.TCPAddr, 5)
	alive.MustConnect(mqtttest.Connect{ClientID: "fuzz-survivor-7f3a9c1e", Clean: true, Keepalive: 600})
	noPanic := func(t *testing.T, data []byte) {
		t.Helper()
		select {
		case ev := <-panics.C:
			t.Fatalf("connection handler panicked (%s) after input %q", ev.Reason, data)
		default:
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		noPanic(t, data)
		c, err := net.DialTimeout("tcp", srv.TCPAddr, mqtttest.Timeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(mqtttest.Timeout))
		at := 0
		if len(data) > 0 {
			at = int(split) % (len(data) + 1)
		}
		// The broker may close at any point: write errors are expected.
		if _, err := c.Write(data[:at]); err == nil {
			_, _ = c.Write(data[at:])
		}
		_ = c.(*net.TCPConn).CloseWrite()
		// Whatever the broker answers, it must close the connection.
		if _, err := io.Copy(io.Discard, c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("broker did not close the connection after input %q", data)
			}
		}
		alive.T = t // the survivor's failures belong to this input
		alive.Ping()
		noPanic(t, data)
	})
}
