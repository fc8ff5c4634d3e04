package broker

import (
	"reflect"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Write-queue backpressure. mochi hands each PUBLISH for a client to a
// queue of MaxPendingWrites slots and, when the queue is full, drops it, QoS
// 1 and 2 included, after the publisher has had its PUBACK/PUBREC: a
// subscriber whose writer falls behind loses acknowledged messages (seen:
// 25-60% of a 2,000-message burst with a 4-slot queue; 19-522 messages per
// 8 s run of a 10 -> 10 QoS 1 load with the default 1,024).
//
// backpressureHook, the last of the broker's own hooks, makes the publisher
// wait instead: before mochi queues a QoS 1/2 message for a client whose
// queue is nearly full, it waits for the queue to drain (the client's writer
// runs on its own goroutine), for at most WriteTimeout, and gives up at once
// if the client goes away. The wait happens on the goroutine routing the
// message, normally the publisher's, which reads nothing meanwhile: TCP
// slows the publisher to the pace of the slowest subscriber of its topic,
// the price of not losing acknowledged messages. (mochi already makes
// publishers wait for a subscriber's socket: it writes under the client's
// lock, which routing a QoS 1/2 message also takes.) QoS 0 messages are
// not held: they may still be dropped, as at most once allows.
type backpressureHook struct {
	mqtt.HookBase
	limit time.Duration // longest wait for one message
}

func (h *backpressureHook) ID() string { return "courier-backpressure" }

func (h *backpressureHook) Provides(b byte) bool {
	return b == mqtt.OnQosPublish && outboundQueueField >= 0
}

func (h *backpressureHook) Init(any) error { return nil }

// outboundQueueField is the index of mochi's per-client write queue
// (ClientState.outbound, unexported) in ClientState, -1 if a mochi version
// no longer has it (TestBackpressureFindsMochisWriteQueue then fails).
var outboundQueueField = func() int {
	f, ok := reflect.TypeFor[mqtt.ClientState]().FieldByName("outbound")
	if !ok || f.Type.Kind() != reflect.Chan {
		return -1
	}
	return f.Index[0]
}()

// writeQueue reports how many packets wait in cl's write queue and its
// capacity. Reading a channel's length through reflection needs no access
// to the value.
func writeQueue(cl *mqtt.Client) (n, capacity int) {
	v := reflect.ValueOf(&cl.State).Elem().Field(outboundQueueField)
	return v.Len(), v.Cap()
}

// OnQosPublish runs as mochi has taken a packet id for a QoS 1/2 message to
// cl and is about to queue it.
func (h *backpressureHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup || cl.Net.Inline {
		return
	}
	n, c := writeQueue(cl)
	if n < c-c/8-1 {
		return
	}
	deadline := time.Now().Add(h.limit)
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, 5*time.Millisecond) {
		if cl.Closed() || time.Now().After(deadline) {
			return
		}
		time.Sleep(wait)
		if n, _ = writeQueue(cl); n < c-c/4 {
			return
		}
	}
}

// backpressureLimit is the longest a publisher waits for one subscriber's
// write queue: WriteTimeout, by which a subscriber that takes nothing is
// closed anyway, or the default write timeout when that is off.
func (b *Broker) backpressureLimit() time.Duration {
	if d := b.cfg.Limits.WriteTimeout; d > 0 {
		return d
	}
	return DefaultLimits().WriteTimeout
}
