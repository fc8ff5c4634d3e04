package store

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BenchmarkHooksQoS1 runs the store's and the fixes' hooks for QoS 1
// messages from one publisher to persistent subscribers, in the order mochi
// v2.7.9 calls them (processPublish, publishToClient, processPuback), without
// the network: the hook cost per message, steadier than an end-to-end run on
// a shared machine. The committer goroutine runs as it does in a broker; its
// CPU and allocations count.
func BenchmarkHooksQoS1(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) { benchHooks(b, subs) })
	}
}

func benchHooks(b *testing.B, nsubs int) {
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	st, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fx := NewFixes(srv)
	h := &mqtt.Hooks{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := h.Add(fx, nil); err != nil {
		b.Fatal(err)
	}
	if err := h.Add(st, Config{Server: srv, Fixes: fx}); err != nil {
		b.Fatal(err)
	}
	client := func(id string) *mqtt.Client {
		c1, c2 := net.Pipe()
		b.Cleanup(func() { c1.Close(); c2.Close() })
		cl := srv.NewClient(c1, "tcp", id, false)
		cl.Properties.ProtocolVersion = 5
		cl.Properties.Props.SessionExpiryInterval = 300
		cl.Properties.Props.SessionExpiryIntervalFlag = true
		srv.Clients.Add(cl)
		st.OnSessionEstablish(cl, packets.Packet{})
		return cl
	}
	const topic = "bench/t"
	pub := client("pub")
	subs := make([]*mqtt.Client, nsubs)
	for i := range subs {
		subs[i] = client(fmt.Sprintf("sub%d", i))
		srv.Topics.Subscribe(subs[i].ID, packets.Subscription{Filter: topic, Qos: 1})
	}
	st.subscriptionsChanged()
	matched := srv.Topics.Subscribers(topic) // mochi's cost, not the hooks'
	payload := make([]byte, 64)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pid := uint16(i%65535 + 1)
		pk := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:       topic,
			Payload:         payload,
			PacketID:        pid,
			ProtocolVersion: 5,
			Origin:          pub.ID,
			Created:         time.Now().Unix(),
		}
		pk, _ = h.OnPacketRead(pub, pk)
		pk, _ = h.OnPublish(pub, pk)
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pid, Created: pk.Created}
		h.OnQosPublish(pub, ack, ack.Created, 0)
		h.OnPacketEncode(pub, ack)
		h.OnQosComplete(pub, ack)
		if len(matched.Shared) > 0 { // as mochi: only for shared subscriptions
			h.OnSelectSubscribers(matched, pk)
		}
		for _, sub := range subs {
			out := pk.Copy(false)
			out.PacketID = pid
			h.OnQosPublish(sub, out, out.Created, 0)
			h.OnPacketEncode(sub, out)
		}
		h.OnPublished(pub, pk)
		h.OnPacketProcessed(pub, pk, nil)
		for _, sub := range subs {
			pa := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pid}
			pa, _ = h.OnPacketRead(sub, pa)
			h.OnQosComplete(sub, pa)
			h.OnPacketProcessed(sub, pa, nil)
		}
	}
	if err := st.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/msg")
	st.idx.Lock()
	left, fans := 0, len(st.fanouts)
	for _, m := range st.out {
		left += len(m)
	}
	st.idx.Unlock()
	if left != 0 || fans != 0 {
		b.Fatalf("flows left: %d outbound, %d fanouts", left, fans)
	}
}
