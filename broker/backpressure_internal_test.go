package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// The backpressure hook reads the length of mochi's unexported per-client
// write queue. A mochi version that renames or retypes it must fail here
// rather than silently lose the backpressure.
func TestBackpressureFindsMochisWriteQueue(t *testing.T) {
	if outboundQueueField < 0 {
		t.Fatal("mochi's ClientState has no outbound channel: backpressure is off")
	}
	srv := mqtt.New(&mqtt.Options{Capabilities: &mqtt.Capabilities{MaximumClientWritesPending: 7}})
	cl := srv.NewClient(nil, "l", "c", false)
	if n, c := writeQueue(cl); n != 0 || c != 7 {
		t.Fatalf("write queue %d of %d, want 0 of 7", n, c)
	}
}
