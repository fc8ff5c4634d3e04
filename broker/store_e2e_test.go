package broker_test

// End-to-end tests of the durable store (issue 3) through the real broker:
// brokertest with its data dir, paho.golang (MQTT 5) and paho.mqtt.golang
// (MQTT 3.1.1) clients on loopback, raw packets where packet ids and DUP
// flags must be controlled. The workarounds themselves are covered against
// bare mochi in hooks/store.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/dgraph-io/badger/v4"
	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

const stWait = 10 * time.Second

// stV5 is a paho.golang client that collects received messages.
type stV5 struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

func stDialV5(t testing.TB, addr, id string, cleanStart bool, expiry uint32) (*stV5, *paho.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, stWait)
	if err != nil {
		t.Fatal(err)
	}
	v := &stV5{msgs: make(chan *paho.Publish, 10000)}
	v.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				v.msgs <- pr.Packet
				return true, nil
			},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), stWait)
	defer cancel()
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: cleanStart,
		Properties: &paho.ConnectProperties{RequestProblemInfo: true}}
	if expiry > 0 {
		cp.Properties.SessionExpiryInterval = &expiry
	}
	ack, err := v.c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	t.Cleanup(func() { _ = v.c.Disconnect(&paho.Disconnect{}) })
	return v, ack
}

func (v *stV5) subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stWait)
	defer cancel()
	sa, err := v.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe %s: %v %v", filter, err, sa)
	}
}

func (v *stV5) publish(t testing.TB, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stWait)
	defer cancel()
	resp, err := v.c.Publish(ctx, p)
	if err != nil || (resp != nil && resp.ReasonCode >= 0x80) {
		t.Fatalf("publish %s: %v %+v", p.Topic, err, resp)
	}
}

func (v *stV5) receive(t testing.TB, n int) []*paho.Publish {
	t.Helper()
	var out []*paho.Publish
	deadline := time.After(stWait)
	for len(out) < n {
		select {
		case m := <-v.msgs:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

func (v *stV5) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-v.msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

func (v *stV5) disconnect() { _ = v.c.Disconnect(&paho.Disconnect{}) }

func stPayloads(ms []*paho.Publish) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Payload)
	}
	return out
}

func stNumbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// waitEvent waits for an event of kind for client id.
func stWaitEvent(t testing.TB, obs *broker.Observer, kind broker.EventKind, id string) {
	t.Helper()
	deadline := time.After(stWait)
	for {
		select {
		case ev, ok := <-obs.C:
			if !ok {
				t.Fatalf("observer closed waiting for %v of %s", kind, id)
			}
			if ev.Kind == kind && ev.ClientID == id {
				return
			}
		case <-deadline:
			t.Fatalf("no %v event for %s", kind, id)
		}
	}
}

// Item 1: QoS 1 and 2 messages queued for an offline session arrive in
// publish order after a reconnect and after a restart (MQTT 5).
func TestStoreQueuedInOrderV5(t *testing.T) {
	srv := brokertest.Start(t)
	sub, _ := stDialV5(t, srv.TCPAddr, "order-sub", false, 600)
	sub.subscribe(t, "order/#", 2)
	sub.disconnect()
	pub, _ := stDialV5(t, srv.TCPAddr, "order-pub", true, 0)

	want := stNumbered("a", 100)
	for i, p := range want {
		pub.publish(t, &paho.Publish{Topic: "order/a", QoS: byte(1 + i%2), Payload: []byte(p)})
	}
	// mochi acks before it fans out; a second round trip on the same
	// connection guarantees the last fan-out is done before the reconnect.
	pub.publish(t, &paho.Publish{Topic: "barrier", QoS: 1})
	sub, ack := stDialV5(t, srv.TCPAddr, "order-sub", false, 600)
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	if got := stPayloads(sub.receive(t, len(want))); !slices.Equal(got, want) {
		t.Fatalf("after reconnect:\n got %v\nwant %v", got, want)
	}
	sub.disconnect()

	want = stNumbered("b", 100)
	for i, p := range want {
		pub.publish(t, &paho.Publish{Topic: "order/b", QoS: byte(1 + i%2), Payload: []byte(p)})
	}
	pub.disconnect()
	srv.Restart(t)
	sub, ack = stDialV5(t, srv.TCPAddr, "order-sub", false, 600)
	if !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	// "a" messages whose acknowledgement paho had not yet sent when it
	// disconnected are rightly sent again first, in order; then every "b".
	var got []string
	last := ""
	for len(got) < len(want) {
		p := string(sub.receive(t, 1)[0].Payload)
		if p[0] == 'a' && len(got) == 0 {
			if p <= last {
				t.Fatalf("redelivered %s after %s", p, last)
			}
			last = p
			continue
		}
		got = append(got, p)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after restart:\n got %v\nwant %v", got, want)
	}
}

// Item 1 for MQTT 3.1.1 persistent sessions (clean session off).
func TestStoreQueuedInOrderV311(t *testing.T) {
	srv := brokertest.Start(t)
	var mu sync.Mutex
	var got []string
	arrived := make(chan struct{}, 1000)
	connect := func(id string, clean bool) mqtt3.Client {
		o := mqtt3.NewClientOptions().AddBroker("tcp://" + srv.TCPAddr).SetClientID(id).
			SetCleanSession(clean).SetProtocolVersion(4).SetAutoReconnect(false).SetOrderMatters(true).
			SetKeepAlive(30 * time.Second)
		o.SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) {
			mu.Lock()
			got = append(got, string(m.Payload()))
			mu.Unlock()
			arrived <- struct{}{}
		})
		c := mqtt3.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(stWait) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	sub := connect("v3-sub", false)
	if tok := sub.Subscribe("v3/#", 1, nil); !tok.WaitTimeout(stWait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	sub.Disconnect(100)
	pub := connect("v3-pub", true)
	want := stNumbered("m", 100)
	for _, p := range want {
		if tok := pub.Publish("v3/t", 1, false, p); !tok.WaitTimeout(stWait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	pub.Disconnect(100)
	srv.Restart(t)
	connect("v3-sub", false)
	deadline := time.After(stWait)
	for range want {
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("received %d of %d", len(got), len(want))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("order:\n got %v\nwant %v", got, want)
	}
}

// Item 2: an expired session is gone from the topic index and the store; a
// new session with the same client id receives nothing on the old
// subscriptions. And expiry counts from the disconnect across a restart.
func TestStoreExpiredSessionIsGone(t *testing.T) {
	srv := brokertest.Start(t)
	obs := srv.Broker.Observe(64, broker.EventSessionExpired)
	defer obs.Close()
	ghost, _ := stDialV5(t, srv.TCPAddr, "ghost", false, 1)
	ghost.subscribe(t, "ghost/t", 1)
	ghost.disconnect()
	stWaitEvent(t, obs, broker.EventSessionExpired, "ghost")

	fresh, ack := stDialV5(t, srv.TCPAddr, "ghost", true, 60)
	if ack.SessionPresent {
		t.Fatal("expired session present")
	}
	pub, _ := stDialV5(t, srv.TCPAddr, "ghost-pub", true, 0)
	pub.publish(t, &paho.Publish{Topic: "ghost/t", QoS: 1, Payload: []byte("to a ghost")})
	fresh.none(t, 300*time.Millisecond)

	// Across a restart: a 2 s session whose broker was down for 3 s is gone.
	short, _ := stDialV5(t, srv.TCPAddr, "short", false, 2)
	short.subscribe(t, "short/t", 1)
	short.disconnect()
	srv.Stop(t)
	<-time.After(3 * time.Second) // the broker is down while the expiry runs out: time passing is what is tested
	srv.Restart(t)
	again, ack := stDialV5(t, srv.TCPAddr, "short", false, 2)
	if ack.SessionPresent {
		t.Fatal("session restored after its expiry ran out while the broker was down")
	}
	pub, _ = stDialV5(t, srv.TCPAddr, "ghost-pub", true, 0)
	pub.publish(t, &paho.Publish{Topic: "short/t", QoS: 1, Payload: []byte("late")})
	again.none(t, 300*time.Millisecond)
}

// Item 3: retained messages keep payload format, content type, user
// properties and expiry across restarts; a clear survives a restart.
func TestStoreRetainedAcrossRestart(t *testing.T) {
	srv := brokertest.Start(t)
	pub, _ := stDialV5(t, srv.TCPAddr, "ret-pub", true, 0)
	format, expiry := byte(1), uint32(600)
	pub.publish(t, &paho.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("hello"),
		Properties: &paho.PublishProperties{PayloadFormat: &format, ContentType: "text/plain", MessageExpiry: &expiry,
			User: paho.UserProperties{{Key: "k", Value: "v"}}}})
	pub.publish(t, &paho.Publish{Topic: "ret/b", QoS: 1, Retain: true, Payload: []byte("to clear")})
	pub.publish(t, &paho.Publish{Topic: "ret/b", QoS: 1, Retain: true})
	pub.disconnect()
	srv.Restart(t)
	srv.Restart(t)

	sub, _ := stDialV5(t, srv.TCPAddr, "ret-sub", true, 0)
	sub.subscribe(t, "ret/#", 1)
	m := sub.receive(t, 1)[0]
	if m.Topic != "ret/a" || string(m.Payload) != "hello" || !m.Retain {
		t.Fatalf("got %s %q retain=%v", m.Topic, m.Payload, m.Retain)
	}
	p := m.Properties
	if p == nil || p.PayloadFormat == nil || *p.PayloadFormat != 1 || p.ContentType != "text/plain" ||
		p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > 600 || p.User.Get("k") != "v" {
		t.Fatalf("properties after restart: %+v", p)
	}
	sub.none(t, 300*time.Millisecond) // ret/b stays cleared
}

// raw MQTT 3.1.1 packets for QoS 2 flows with chosen ids and DUP flags.
func stRawConnect(c *rawClient, id string, clean bool) packet {
	c.t.Helper()
	flags := byte(0)
	if clean {
		flags = 0x02
	}
	body := append(str("MQTT"), 4, flags, 0, 30)
	body = append(body, str(id)...)
	c.send(frame(0x10, body))
	p, err := c.read(stWait)
	if err != nil || p.kind() != 2 || p.body[1] != 0 {
		c.t.Fatalf("connack: %v %x", err, p.body)
	}
	return p
}

func stRawPublish2(topic string, id uint16, dup bool, payload string) []byte {
	h := byte(0x34)
	if dup {
		h |= 0x08
	}
	body := binary.BigEndian.AppendUint16(str(topic), id)
	return frame(h, append(body, payload...))
}

func stRawAck(kind byte, id uint16) []byte {
	h := kind << 4
	if kind == 6 { // PUBREL
		h |= 0x02
	}
	return frame(h, binary.BigEndian.AppendUint16(nil, id))
}

func (c *rawClient) stExpect(kind byte) packet {
	c.t.Helper()
	p, err := c.read(stWait)
	if err != nil {
		c.t.Fatalf("waiting for packet type %d: %v", kind, err)
	}
	if p.kind() != kind {
		c.t.Fatalf("got packet type %d (%x), want %d", p.kind(), p.body, kind)
	}
	return p
}

// Item 4: a DUP resend of an unreleased QoS 2 PUBLISH gets a normal PUBREC,
// is delivered once, and its packet id is not poisoned; the PUBREL stage of
// an outbound flow survives a restart.
func TestStoreQoS2ExactlyOnce(t *testing.T) {
	srv := brokertest.Start(t)
	sub := dialRaw(t, "tcp", srv.TCPAddr)
	stRawConnect(sub, "q2-sub", false)
	sub.send(frame(0x82, append(binary.BigEndian.AppendUint16(nil, 1), append(str("q2/t"), 2)...)))
	sub.stExpect(9) // SUBACK

	pub := dialRaw(t, "tcp", srv.TCPAddr)
	stRawConnect(pub, "q2-pub", true)
	pub.send(stRawPublish2("q2/t", 7, false, "one"))
	pub.stExpect(5)
	pub.send(stRawPublish2("q2/t", 7, true, "one"))
	if rec := pub.stExpect(5); len(rec.body) > 2 && rec.body[2] != 0 {
		t.Fatalf("PUBREC for the DUP resend: reason %#x", rec.body[2])
	}
	pub.send(stRawAck(6, 7))
	pub.stExpect(7) // PUBCOMP

	msg := sub.stExpect(3)
	id := binary.BigEndian.Uint16(msg.body[2+len("q2/t"):])
	sub.send(stRawAck(5, id)) // PUBREC; the broker answers PUBREL, which sub leaves unanswered
	sub.stExpect(6)

	pub.send(stRawPublish2("q2/t", 7, false, "two")) // the id is free again
	pub.stExpect(5)
	pub.send(stRawAck(6, 7))
	pub.stExpect(7)
	two := sub.stExpect(3)
	if got := string(two.body[2+len("q2/t")+2:]); got != "two" {
		t.Fatalf("second message %q", got) // "one" again would be a double delivery
	}
	id2 := binary.BigEndian.Uint16(two.body[2+len("q2/t"):])
	sub.send(stRawAck(5, id2))
	sub.stExpect(6)

	srv.Restart(t)
	sub = dialRaw(t, "tcp", srv.TCPAddr)
	stRawConnect(sub, "q2-sub", false)
	for _, want := range []uint16{id, id2} { // both flows resume with PUBREL, in order, not PUBLISH
		rel := sub.stExpect(6)
		if got := binary.BigEndian.Uint16(rel.body); got != want {
			t.Fatalf("PUBREL for %d, want %d", got, want)
		}
		sub.send(stRawAck(7, want))
	}
	if p, err := sub.read(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected packet type %d after PUBCOMP", p.kind())
	}
}

// Item 5: a crash mid-stream (store abandoned, connections cut, no graceful
// close) loses no message whose PUBACK the publisher received.
func TestStoreAcknowledgedSurviveCrash(t *testing.T) {
	srv := brokertest.Start(t)
	sub, _ := stDialV5(t, srv.TCPAddr, "crash-sub", false, 600)
	sub.subscribe(t, "crash/#", 1)
	sub.disconnect()

	const publishers, per = 4, 400
	var mu sync.Mutex
	acked := map[string]bool{}
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for p := range publishers {
		pub, _ := stDialV5(t, srv.TCPAddr, fmt.Sprintf("crash-pub-%d", p), true, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				payload := fmt.Sprintf("%d-%03d", p, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := pub.c.Publish(ctx, &paho.Publish{Topic: "crash/t", QoS: 1, Payload: []byte(payload)})
				cancel()
				if err != nil || resp == nil || resp.ReasonCode >= 0x80 {
					return // the broker is gone
				}
				mu.Lock()
				acked[payload] = true
				if len(acked) >= publishers*per/3 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(stWait):
		t.Fatal("publishers too slow")
	}
	srv.Crash(t)
	wg.Wait()
	t.Logf("%d messages acknowledged before the crash", len(acked))

	srv.Restart(t)
	sub, ack := stDialV5(t, srv.TCPAddr, "crash-sub", false, 600)
	if !ack.SessionPresent {
		t.Fatal("session lost in the crash")
	}
	got := map[string]bool{}
	deadline := time.After(stWait)
	for missing := len(acked); missing > 0; {
		select {
		case m := <-sub.msgs:
			if acked[string(m.Payload)] && !got[string(m.Payload)] {
				missing--
			}
			got[string(m.Payload)] = true
		case <-deadline:
			t.Fatalf("%d acknowledged messages lost", missing)
		}
	}
}

// Item 9: a shared subscription delivers each message to one connected
// member, round-robin, never to an offline member while one is connected.
func TestStoreSharedSubscriptions(t *testing.T) {
	srv := brokertest.Start(t)
	obs := srv.Broker.Observe(64, broker.EventClientDisconnected)
	defer obs.Close()
	off, _ := stDialV5(t, srv.TCPAddr, "share-offline", false, 600)
	off.subscribe(t, "$share/g/share/t", 1)
	off.disconnect()
	stWaitEvent(t, obs, broker.EventClientDisconnected, "share-offline")
	a, _ := stDialV5(t, srv.TCPAddr, "share-a", true, 0)
	a.subscribe(t, "$share/g/share/t", 1)
	b, _ := stDialV5(t, srv.TCPAddr, "share-b", true, 0)
	b.subscribe(t, "$share/g/share/t", 1)
	pub, _ := stDialV5(t, srv.TCPAddr, "share-pub", true, 0)
	for i := range 10 {
		pub.publish(t, &paho.Publish{Topic: "share/t", QoS: 1, Payload: []byte{byte(i)}})
	}
	ga, gb := a.receive(t, 5), b.receive(t, 5)
	for i := range ga {
		if ga[i].Payload[0]%2 != ga[0].Payload[0]%2 || gb[i].Payload[0]%2 == ga[0].Payload[0]%2 {
			t.Fatalf("not round-robin: a %v b %v", stPayloads(ga), stPayloads(gb))
		}
	}
	off, ack := stDialV5(t, srv.TCPAddr, "share-offline", false, 600)
	if !ack.SessionPresent {
		t.Fatal("offline member's session lost")
	}
	off.none(t, 300*time.Millisecond)
}

// Item 6: a corrupt record is set aside and the broker still starts and
// serves everything else.
func TestStoreCorruptRecordDoesNotStopTheBroker(t *testing.T) {
	srv := brokertest.Start(t)
	good, _ := stDialV5(t, srv.TCPAddr, "good", false, 600)
	good.subscribe(t, "good/#", 1)
	good.disconnect()
	pub, _ := stDialV5(t, srv.TCPAddr, "good-pub", true, 0)
	pub.publish(t, &paho.Publish{Topic: "good/t", QoS: 1, Payload: []byte("kept")})
	pub.disconnect()
	srv.Stop(t)

	// Damage the store underneath: a session record that does not decode.
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(srv.DataDir, "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("S\x03bad"), []byte{1, 'S', 0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)
	good, ack := stDialV5(t, srv.TCPAddr, "good", false, 600)
	if !ack.SessionPresent {
		t.Fatal("good session lost beside a corrupt record")
	}
	if m := good.receive(t, 1)[0]; string(m.Payload) != "kept" {
		t.Fatalf("got %q", m.Payload)
	}
}
