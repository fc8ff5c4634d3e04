package conformance_test

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Routing and the shape of what the broker forwards: sections 2.2/2.3
// (packet identifiers), 1.5.5 (variable byte integers), 3.3.2 (topic
// names), 4.3.3 (QoS 2), 4.5 (message receipt), 4.8 (3.1.1 error handling).

// TestForwardedPublishShape: a forwarded message carries the topic it was
// published on, which matches the subscription's filter; every matching
// subscriber gets it (online or queued in its session); a QoS 0 PUBLISH
// carries no packet identifier; and the remaining length is encoded in as
// few bytes as it needs.
func TestForwardedPublishShape(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, true, nil)
	for _, v := range []byte{5, 4} {
		t.Run(lcVersions[v], func(t *testing.T) {
			t.Parallel()
			pre := "shape" + lcVersions[v]
			a := outClient(t, srv.TCPAddr, v, pre+"-a")
			a.Subscribe(1, mt.Sub{Filter: pre + "/+/x", Options: 0})
			b := outClient(t, srv.TCPAddr, v, pre+"-b")
			b.Subscribe(1, mt.Sub{Filter: pre + "/#", Options: 1})
			off, _ := outSession(t, srv.TCPAddr, v, pre+"-off")
			off.Subscribe(1, mt.Sub{Filter: pre + "/a/+", Options: 1})
			outGone(t, srv, off, pre+"-off", false)

			pub := outClient(t, srv.TCPAddr, v, pre+"-pub")
			payload := bytes.Repeat([]byte("p"), 200) // remaining length 200+: two bytes
			outPublishAcked(pub, mt.Publish{Version: v, Topic: pre + "/a/x", QoS: 1, PacketID: 1, Payload: payload})
			outPublishAcked(pub, mt.Publish{Version: v, Topic: pre + "2/a/x", QoS: 1, PacketID: 2, Payload: []byte("elsewhere")})

			// QoS 0 to a: no packet identifier, remaining length minimal.
			// [MQTT-2.2.1-2] [MQTT-2.3.1-5@3.1.1] [MQTT-1.5.5-1]
			h, err := a.R.ReadByte()
			if err != nil || h>>4 != mt.PUBLISH || h>>1&3 != 0 {
				t.Fatalf("want a QoS 0 PUBLISH header, got %#x %v", h, err)
			}
			var lenBytes []byte
			for {
				c, err := a.R.ReadByte()
				if err != nil {
					t.Fatal(err)
				}
				lenBytes = append(lenBytes, c)
				if c&0x80 == 0 {
					break
				}
			}
			want := mt.Cat(mt.Str(pre+"/a/x"), payload)
			if v == 5 {
				want = mt.Cat(mt.Str(pre+"/a/x"), []byte{0}, payload)
			}
			if !bytes.Equal(lenBytes, mt.Varint(len(want))) {
				t.Fatalf("remaining length encoded as % x, want % x", lenBytes, mt.Varint(len(want)))
			}
			body := make([]byte, len(want))
			if _, err := io.ReadFull(a.R, body); err != nil || !bytes.Equal(body, want) {
				t.Fatalf("QoS 0 PUBLISH body % x, want % x (no packet identifier)", body[:min(len(body), 40)], want[:40])
			}

			// The topic is the one published and matches the filter; the
			// message for pre2/... reaches neither. [MQTT-3.3.2-3] [MQTT-3.3.2-3@3.1.1]
			m := b.ExpectPublish()
			if m.Topic != pre+"/a/x" || !bytes.Equal(m.Payload, payload) {
				t.Fatalf("b got %q", m.Topic)
			}
			b.SendAck(mt.PUBACK, m.PacketID)
			if got := b.Ping(); len(got) > 0 {
				t.Fatalf("b got more: %v", got)
			}
			if got := a.Ping(); len(got) > 0 {
				t.Fatalf("a got more: %v", got)
			}
			// The offline session got it too. [MQTT-4.5.0-1@3.1.1]
			back, present := outSession(t, srv.TCPAddr, v, pre+"-off")
			if !present {
				t.Fatal("session not present")
			}
			if m := back.ExpectPublish(); m.Topic != pre+"/a/x" {
				t.Fatalf("offline session got %q", m.Topic)
			}
		})
	}
}

// TestNoTopicAliasWithoutMaximum: a client that sets no Topic Alias Maximum
// gets no topic aliases [MQTT-3.1.2-27].
func TestNoTopicAliasWithoutMaximum(t *testing.T) {
	t.Parallel()
	srv := start(t)
	sub := outClient(t, srv.TCPAddr, 5, "noalias-sub")
	sub.Subscribe(1, mt.Sub{Filter: "noalias/#", Options: 0})
	pub := outClient(t, srv.TCPAddr, 5, "noalias-pub")
	for range 3 {
		pub.Publish(mt.Publish{Topic: "noalias/t", Payload: []byte("x")})
	}
	for range 3 {
		if m := sub.ExpectPublish(); m.Props.Has(mt.PropTopicAlias) || m.Topic != "noalias/t" {
			t.Fatalf("got topic %q with properties %+v", m.Topic, m.Props)
		}
	}
}

// TestQoS2PacketIdentifiersAndExpiry: the broker gives each unacknowledged
// QoS 2 message to a client its own packet identifier [MQTT-4.3.3-1]; as
// a receiver it completes a QoS 2 exchange for a message that expired in
// the meantime [MQTT-4.3.3-13].
func TestQoS2PacketIdentifiersAndExpiry(t *testing.T) {
	t.Parallel()
	srv := start(t)
	sub := outClient(t, srv.TCPAddr, 5, "q2ids-sub")
	sub.Subscribe(1, mt.Sub{Filter: "q2ids/#", Options: 2})
	pub := outClient(t, srv.TCPAddr, 5, "q2ids-pub")
	for i := range 3 {
		pub.Send(mt.Publish{Topic: "q2ids/t", QoS: 2, PacketID: uint16(i + 1), Payload: []byte("x")}.Encode())
		pub.ExpectAck(mt.PUBREC)
		pub.Send(mt.Ack(5, mt.PUBREL, uint16(i+1), 0))
		pub.ExpectAck(mt.PUBCOMP)
	}
	seen := map[uint16]bool{}
	for range 3 {
		m := sub.ExpectPublish() // none acknowledged yet
		if m.QoS != 2 || seen[m.PacketID] {
			t.Fatalf("QoS %d packet id %d, ids so far %v", m.QoS, m.PacketID, seen)
		}
		seen[m.PacketID] = true
	}

	// An expiring message: PUBREC, then the PUBREL after its expiry.
	pub.Send(mt.Publish{Topic: "q2ids/exp", QoS: 2, PacketID: 9, Payload: []byte("x"),
		Props: [][]byte{mt.Int(mt.PropMessageExpiry, 1)}}.Encode())
	if a := pub.ExpectAck(mt.PUBREC); a.PacketID != 9 || a.Reason != 0 {
		t.Fatalf("PUBREC %+v", a)
	}
	// Let the message expire (no event marks it); meanwhile nothing more
	// may reach the publisher.
	pub.Quiet(1500 * time.Millisecond)
	pub.Send(mt.Ack(5, mt.PUBREL, 9, 0))
	if a := pub.ExpectAck(mt.PUBCOMP); a.PacketID != 9 || a.Reason != 0 {
		t.Fatalf("PUBCOMP %+v, want packet 9 with 0x00", a)
	}
}

// TestConnectPayloadOrder: the broker reads the CONNECT payload in the
// order the specification fixes (client id, Will properties, Will topic,
// Will payload, user name, password): each lands where it belongs.
// [MQTT-3.1.3-1] [MQTT-3.1.3-1@3.1.1]
func TestConnectPayloadOrder(t *testing.T) {
	t.Parallel()
	srv := start(t)
	obs := srv.Broker.Observe(64, broker.EventClientConnected)
	defer obs.Close()
	w := lcWatch(t, srv, "order/#")
	for _, v := range []byte{5, 4} {
		id := "order-" + lcVersions[v]
		c := mt.Dial(t, srv.TCPAddr, v)
		will := &mt.Will{Topic: "order/" + id, Payload: []byte("will of " + id)}
		if v == 5 {
			will.Props = [][]byte{mt.String(mt.PropContentType, "text/plain")}
		}
		c.MustConnect(mt.Connect{ClientID: id, Keepalive: 30, Clean: true, Will: will,
			Username: mt.Ptr("user-" + id), Password: mt.Ptr("secret")})
		deadline := time.After(mt.Timeout)
	wait:
		for {
			select {
			case ev := <-obs.C:
				if ev.ClientID == id {
					if ev.Username != "user-"+id {
						t.Fatalf("%s: user name %q", id, ev.Username)
					}
					break wait
				}
			case <-deadline:
				t.Fatalf("%s not reported connected", id)
			}
		}
		_ = c.C.Close()
		m := lcExpectMessage(t, w, "order/"+id, "will of "+id)
		if ct, _ := m.Props.Get(mt.PropContentType); v == 5 && ct.Str != "text/plain" {
			t.Fatalf("Will content type %q", ct.Str)
		}
	}
}

// panicOnTopic panics while mochi reads a PUBLISH to topic "boom": a stand-in
// for any unexpected failure while the broker handles one packet.
type panicOnTopic struct{ mqtt.HookBase }

func (h *panicOnTopic) ID() string           { return "conformance-panic" }
func (h *panicOnTopic) Provides(b byte) bool { return b == mqtt.OnPacketRead }
func (h *panicOnTopic) OnPacketRead(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && strings.HasPrefix(pk.TopicName, "boom") {
		panic("boom")
	}
	return pk, nil
}

// TestFailureWhileHandlingAPacketClosesItsConnection: an error while the
// broker handles a packet closes the connection it came on, and only that
// one [MQTT-4.8.0-2@3.1.1].
func TestFailureWhileHandlingAPacketClosesItsConnection(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithHook(&panicOnTopic{}, nil)))
	alive := outClient(t, srv.TCPAddr, 4, "fail-alive")
	bad := outClient(t, srv.TCPAddr, 4, "fail-bad")
	bad.Send(mt.Publish{Version: 4, Topic: "boom", Payload: []byte("x")}.Encode())
	bad.ExpectClosed()
	if got := alive.Ping(); len(got) > 0 {
		t.Fatalf("the other connection got %v", got)
	}
}

// TestRefusingPubrecFreesThePacketIdentifier: after the broker answers a QoS
// 2 PUBLISH with a refusing PUBREC (0x87, not authorized), a PUBLISH with
// the same packet identifier is a new message [MQTT-4.3.3-9].
func TestRefusingPubrecFreesThePacketIdentifier(t *testing.T) {
	t.Parallel()
	b := lcTokenBroker(t)
	watch := b.connect(t, 5, "reuse-watch", auth.Grants{Sub: []string{"#"}})
	watch.Subscribe(1, mt.Sub{Filter: "ok/#", Options: 2})
	c := b.connect(t, 5, "reuse", auth.Grants{Pub: []string{"ok/#"}})
	c.Send(mt.Publish{Topic: "no/1", QoS: 2, PacketID: 5, Payload: []byte("refused")}.Encode())
	if a := c.ExpectAck(mt.PUBREC); a.PacketID != 5 || a.Reason != 0x87 {
		t.Fatalf("PUBREC %+v, want packet 5 with 0x87", a)
	}
	c.Send(mt.Publish{Topic: "ok/1", QoS: 2, PacketID: 5, Payload: []byte("new")}.Encode())
	if a := c.ExpectAck(mt.PUBREC); a.PacketID != 5 || a.Reason != 0 {
		t.Fatalf("PUBREC %+v, want packet 5 with 0x00", a)
	}
	c.Send(mt.Ack(5, mt.PUBREL, 5, 0))
	c.ExpectAck(mt.PUBCOMP)
	lcExpectMessage(t, watch, "ok/1", "new")
}

// TestTransportsAreOrderedAndLossless: over each transport the broker
// offers (TCP, WebSocket, unix socket) a stream of messages arrives whole
// and in order [MQTT-4.2-1] [MQTT-7.1.1-1@3.1.1].
func TestTransportsAreOrderedAndLossless(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners = append(c.Listeners, broker.ListenerConfig{Name: "unix", Type: broker.ListenerUnix, Addr: sock})
	}))
	dial := map[string]func(v byte) *mt.Conn{
		"tcp": func(v byte) *mt.Conn { return mt.Dial(t, srv.TCPAddr, v) },
		"ws":  func(v byte) *mt.Conn { c, _, _ := dialWS(t, srv, v); return c },
		"unix": func(v byte) *mt.Conn {
			nc, err := net.DialTimeout("unix", sock, mt.Timeout)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = nc.Close() })
			return mt.Wrap(t, nc, v)
		},
	}
	for name, d := range dial {
		for _, v := range []byte{5, 4} {
			id := "transport-" + name + "-" + lcVersions[v]
			c := d(v)
			c.MustConnect(mt.Connect{ClientID: id, Clean: true, Keepalive: 30})
			c.Subscribe(1, mt.Sub{Filter: id, Options: 1})
			const n = 100
			for i := range n {
				c.Send(mt.Publish{Version: v, Topic: id, QoS: 1, PacketID: uint16(i + 1), Payload: []byte(strconv.Itoa(i))}.Encode())
			}
			next := 0
			for acks := 0; acks < n || next < n; {
				p := c.Next()
				switch p.Type() {
				case mt.PUBACK:
					acks++
				case mt.PUBLISH:
					m, err := p.Publish(v)
					if err != nil || string(m.Payload) != strconv.Itoa(next) {
						t.Fatalf("%s: message %q, want %d (%v)", id, m.Payload, next, err)
					}
					c.SendAck(mt.PUBACK, m.PacketID)
					next++
				default:
					t.Fatalf("%s: unexpected %s", id, p)
				}
			}
		}
	}
}
