package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const waitFor = 5 * time.Second

// testBroker is a real mochi server on 127.0.0.1:0 with the fixes hook and,
// when dir is not empty, the store.
type testBroker struct {
	srv  *mqtt.Server
	st   *Store
	fx   *Fixes
	addr string
	dir  string
	once sync.Once
}

type brokerCfg struct {
	noFixes  bool
	noStore  bool
	caps     func(*mqtt.Capabilities)
	opts     Options
	fixClock func() time.Time
	hooks    []mqtt.Hook
}

// expiryWatcher is a hook that reports expired and disconnected clients on
// channels.
type expiryWatcher struct {
	mqtt.HookBase
	expired      chan string
	disconnected chan string
	completed    chan string
	queued       chan string
}

func newExpiryWatcher() *expiryWatcher {
	return &expiryWatcher{expired: make(chan string, 16), disconnected: make(chan string, 64), completed: make(chan string, 1<<14), queued: make(chan string, 1<<14)}
}

func (w *expiryWatcher) ID() string { return "test-expiry-watcher" }

func (w *expiryWatcher) Provides(b byte) bool {
	return b == mqtt.OnClientExpired || b == mqtt.OnDisconnect || b == mqtt.OnQosComplete || b == mqtt.OnQosPublish
}

// OnQosPublish reports QoS 1/2 messages handed to a client (or its queue).
func (w *expiryWatcher) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup {
		return
	}
	select {
	case w.queued <- cl.ID:
	default:
	}
}

// waitQueued waits until a QoS 1/2 message has been handed to id.
func (w *expiryWatcher) waitQueued(t testing.TB, id string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case got := <-w.queued:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("no message handed to %s", id)
		}
	}
}

// OnQosComplete reports outbound flows a client has finished.
func (w *expiryWatcher) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type == packets.Puback && pk.Created != 0 {
		return // mochi's own inbound QoS 1 ack, not a client's PUBACK
	}
	if pk.FixedHeader.Type == packets.Pubrel {
		return // inbound QoS 2
	}
	select {
	case w.completed <- cl.ID:
	default:
	}
}

// waitCompleted waits until the broker has seen n outbound QoS 1/2 flows to
// id complete.
func (w *expiryWatcher) waitCompleted(t testing.TB, id string, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for n > 0 {
		select {
		case got := <-w.completed:
			if got == id {
				n--
			}
		case <-deadline:
			t.Fatalf("%d flows to %s not completed", n, id)
		}
	}
}

// OnDisconnect runs after mochi has finished with the connection except for
// the clean-session cleanup, which follows it on the same goroutine.
func (w *expiryWatcher) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if cl.Net.Conn == nil {
		return
	}
	select {
	case w.disconnected <- cl.ID:
	default:
	}
}

// waitDisconnected waits until the broker has seen ids disconnect.
func (w *expiryWatcher) waitDisconnected(t testing.TB, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.After(waitFor)
	for len(want) > 0 {
		select {
		case id := <-w.disconnected:
			delete(want, id)
		case <-deadline:
			t.Fatalf("clients %v did not disconnect", want)
		}
	}
}

func (w *expiryWatcher) OnClientExpired(cl *mqtt.Client) {
	select {
	case w.expired <- cl.ID:
	default:
	}
}

func startBroker(t testing.TB, dir string, mods ...func(*brokerCfg)) *testBroker {
	t.Helper()
	var c brokerCfg
	for _, m := range mods {
		m(&c)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if c.caps != nil {
		c.caps(caps)
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		InlineClient: true,
	})
	b := &testBroker{srv: srv, dir: dir}
	if !c.noFixes {
		b.fx = NewFixes(srv, WithFixesClock(c.fixClock))
		if err := srv.AddHook(b.fx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !c.noStore {
		st, err := Open(dir, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		b.st = st
		if err := srv.AddHook(st, Config{Server: srv, Fixes: b.fx}); err != nil {
			t.Fatal(err)
		}
	}
	// The auth hook comes after Fixes and the store, as in the broker:
	// mochi stops asking hooks at the first that allows an ACL check.
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	// Extra hooks run after the store, so what they report has reached it.
	for _, h := range c.hooks {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "tcp", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b.addr = tcp.Address()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// stop closes the server gracefully, then the store.
func (b *testBroker) stop(t testing.TB) {
	b.once.Do(func() {
		_ = b.srv.Close()
		if b.st != nil {
			if err := b.st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	})
}

// crash abandons the store without writing what is queued (as a killed
// process would), then cuts every connection.
func (b *testBroker) crash(t testing.TB) {
	b.once.Do(func() {
		if b.st != nil {
			if err := b.st.Abort(); err != nil {
				t.Errorf("abort store: %v", err)
			}
		}
		_ = b.srv.Close()
	})
}

// rawClient speaks MQTT with mochi's packet codec, so tests control packet
// ids, DUP flags and acknowledgements.
type rawClient struct {
	t       testing.TB
	conn    net.Conn
	ver     byte
	wmu     sync.Mutex
	in      chan packets.Packet
	autoAck bool
	done    chan struct{}
}

type connOpt struct {
	ver       byte
	clean     bool
	expiry    uint32
	noAck     bool
	willTopic string // a QoS 1 Will with payload "gone <client id>"
	willDelay uint32
}

func dial(t testing.TB, addr, id string, o connOpt) (*rawClient, packets.Packet) {
	t.Helper()
	if o.ver == 0 {
		o.ver = 5
	}
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, ver: o.ver, in: make(chan packets.Packet, 4096), autoAck: !o.noAck, done: make(chan struct{})}
	name := "MQTT"
	if o.ver == 3 {
		name = "MQIsdp"
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: o.ver,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte(name),
			Clean:            o.clean,
			Keepalive:        30,
			ClientIdentifier: id,
		},
	}
	if o.ver == 5 && o.expiry > 0 {
		pk.Properties.SessionExpiryInterval = o.expiry
		pk.Properties.SessionExpiryIntervalFlag = true
	}
	if o.willTopic != "" {
		pk.Connect.WillFlag = true
		pk.Connect.WillTopic = o.willTopic
		pk.Connect.WillPayload = []byte("gone " + id)
		pk.Connect.WillQos = 1
		pk.Connect.WillProperties.WillDelayInterval = o.willDelay
	}
	if o.ver == 5 {
		pk.Properties.RequestProblemInfo = 1
		pk.Properties.RequestProblemInfoFlag = true
	}
	c.write(pk)
	go c.readLoop()
	t.Cleanup(c.close)
	ack := c.next(packets.Connack)
	if ack.ReasonCode != 0 {
		t.Fatalf("connack reason %#x", ack.ReasonCode)
	}
	return c, ack
}

func (c *rawClient) close() {
	_ = c.conn.Close()
	<-c.done
}

// disconnect sends DISCONNECT and closes the connection.
func (c *rawClient) disconnect() {
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	c.close()
}

func (c *rawClient) write(pk packets.Packet) {
	c.t.Helper()
	pk.ProtocolVersion = c.ver
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		pk.FixedHeader.Qos = 1
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case packets.Unsubscribe:
		pk.FixedHeader.Qos = 1
		err = pk.UnsubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	default:
		err = fmt.Errorf("cannot encode %d", pk.FixedHeader.Type)
	}
	if err != nil {
		c.t.Errorf("encode: %v", err)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := c.conn.Write(buf.Bytes()); err != nil {
		c.t.Logf("write: %v", err)
	}
}

func (c *rawClient) readLoop() {
	defer close(c.done)
	defer close(c.in)
	r := bufio.NewReader(c.conn)
	for {
		hb, err := r.ReadByte()
		if err != nil {
			return
		}
		var fh packets.FixedHeader
		if err := fh.Decode(hb); err != nil {
			return
		}
		n, _, err := packets.DecodeLength(r)
		if err != nil {
			return
		}
		fh.Remaining = n
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: c.ver}
		switch fh.Type {
		case packets.Connack:
			err = pk.ConnackDecode(body)
		case packets.Publish:
			err = pk.PublishDecode(body)
		case packets.Puback:
			err = pk.PubackDecode(body)
		case packets.Pubrec:
			err = pk.PubrecDecode(body)
		case packets.Pubrel:
			err = pk.PubrelDecode(body)
		case packets.Pubcomp:
			err = pk.PubcompDecode(body)
		case packets.Suback:
			err = pk.SubackDecode(body)
		case packets.Unsuback:
			err = pk.UnsubackDecode(body)
		case packets.Disconnect:
			err = pk.DisconnectDecode(body)
		case packets.Pingresp:
		}
		if err != nil {
			return
		}
		if c.autoAck {
			switch {
			case fh.Type == packets.Publish && fh.Qos == 1:
				c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
			case fh.Type == packets.Publish && fh.Qos == 2:
				c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID})
			case fh.Type == packets.Pubrel:
				c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: pk.PacketID})
			}
		}
		c.in <- pk
	}
}

// next returns the next packet of type typ, skipping others of no interest
// (PUBREL when auto-acking). It fails the test after waitFor.
func (c *rawClient) next(typ byte) packets.Packet {
	c.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case pk, ok := <-c.in:
			if !ok {
				c.t.Fatalf("connection closed waiting for packet type %d", typ)
			}
			if pk.FixedHeader.Type == typ {
				return pk
			}
			if c.autoAck && pk.FixedHeader.Type == packets.Pubrel {
				continue
			}
			c.t.Fatalf("got packet type %d, want %d", pk.FixedHeader.Type, typ)
		case <-deadline:
			c.t.Fatalf("timeout waiting for packet type %d", typ)
		}
	}
}

// none asserts that no PUBLISH arrives within d (a bounded wait for an
// absence; never used to wait for something to happen).
func (c *rawClient) none(d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case pk, ok := <-c.in:
			if !ok {
				return
			}
			if pk.FixedHeader.Type == packets.Publish {
				c.t.Fatalf("unexpected publish on %q: %q pid=%d dup=%v", pk.TopicName, pk.Payload, pk.PacketID, pk.FixedHeader.Dup)
			}
		case <-deadline:
			return
		}
	}
}

func (c *rawClient) subscribe(pid uint16, subs ...packets.Subscription) []byte {
	c.t.Helper()
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: pid, Filters: subs})
	ack := c.next(packets.Suback)
	return ack.ReasonCodes
}

// publish sends a PUBLISH and, for QoS 1/2, completes the flow.
func (c *rawClient) publish(pid uint16, topic string, qos byte, payload []byte, mod ...func(*packets.Packet)) {
	c.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload}
	if qos > 0 {
		pk.PacketID = pid
	}
	for _, m := range mod {
		m(&pk)
	}
	c.write(pk)
	switch qos {
	case 1:
		if ack := c.next(packets.Puback); ack.PacketID != pid || ack.ReasonCode >= 0x80 {
			c.t.Fatalf("puback %d reason %#x", ack.PacketID, ack.ReasonCode)
		}
	case 2:
		if ack := c.next(packets.Pubrec); ack.PacketID != pid || ack.ReasonCode >= 0x80 {
			c.t.Fatalf("pubrec %d reason %#x", ack.PacketID, ack.ReasonCode)
		}
		c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: pid})
		c.next(packets.Pubcomp)
	}
}

// receive collects n PUBLISH payloads.
func (c *rawClient) receive(n int) []string {
	c.t.Helper()
	out := make([]string, 0, n)
	for len(out) < n {
		pk := c.next(packets.Publish)
		out = append(out, string(pk.Payload))
	}
	return out
}

func seqPayloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}
