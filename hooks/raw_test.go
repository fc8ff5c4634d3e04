package hooks_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient speaks MQTT through mochi's packet codec, so tests see the exact
// reason codes on the wire.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	ver byte
	pid uint16

	pending []packets.Packet // PUBLISHes read while waiting for an ack
}

const waitFor = 5 * time.Second

func dialRaw(t *testing.T, addr string, ver byte) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Client packet ids start high: mochi keeps inbound and outbound packet ids
	// in one inflight map, so a SUBSCRIBE id equal to an unacked outbound QoS 1
	// delivery's id is answered 0x91.
	return &rawClient{t: t, c: c, r: bufio.NewReader(c), ver: ver, pid: 50000}
}

type connectOpts struct {
	clientID, username, password string
	clean                        bool
	sessionExpiry                uint32
	will                         string // will topic, empty for none
	authMethod, authData         string // MQTT 5 enhanced authentication
}

// connect sends CONNECT and returns the CONNACK.
func (rc *rawClient) connect(o connectOpts) packets.Packet {
	rc.t.Helper()
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: rc.ver,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			ClientIdentifier: o.clientID,
			Clean:            o.clean,
			Keepalive:        30,
			UsernameFlag:     o.username != "",
			Username:         []byte(o.username),
			PasswordFlag:     o.password != "",
			Password:         []byte(o.password),
		},
	}
	if o.will != "" {
		pk.Connect.WillFlag = true
		pk.Connect.WillTopic = o.will
		pk.Connect.WillPayload = []byte("will")
	}
	if o.authMethod != "" {
		pk.Properties.AuthenticationMethod = o.authMethod
		pk.Properties.AuthenticationData = []byte(o.authData)
	}
	if rc.ver == 5 && o.sessionExpiry > 0 {
		pk.Properties.SessionExpiryInterval = o.sessionExpiry
		pk.Properties.SessionExpiryIntervalFlag = true
	}
	rc.send(pk)
	ack := rc.read()
	if ack.FixedHeader.Type != packets.Connack {
		rc.t.Fatalf("expected CONNACK, got %s", packets.PacketNames[ack.FixedHeader.Type])
	}
	return ack
}

func (rc *rawClient) send(pk packets.Packet) {
	rc.t.Helper()
	pk.ProtocolVersion = rc.ver
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	case packets.Auth:
		err = pk.AuthEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	default:
		rc.t.Fatalf("rawClient cannot send %d", pk.FixedHeader.Type)
	}
	if err != nil {
		rc.t.Fatalf("encode: %v", err)
	}
	_ = rc.c.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := rc.c.Write(buf.Bytes()); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// next reads one packet; it returns an error on EOF or timeout.
func (rc *rawClient) next(timeout time.Duration) (packets.Packet, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	hb, err := rc.r.ReadByte()
	if err != nil {
		return packets.Packet{}, err
	}
	var pk packets.Packet
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(rc.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = rc.ver
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pingresp:
		err = pk.PingrespDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	case packets.Auth:
		err = pk.AuthDecode(body)
	default:
		err = fmt.Errorf("unexpected packet %d", pk.FixedHeader.Type)
	}
	return pk, err
}

func (rc *rawClient) read() packets.Packet {
	rc.t.Helper()
	pk, err := rc.next(waitFor)
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	return pk
}

// expectClosed asserts the server closes the connection with no further
// packet.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	pk, err := rc.next(waitFor)
	if err == nil {
		rc.t.Fatalf("expected the connection to close, got %s", packets.PacketNames[pk.FixedHeader.Type])
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		rc.t.Fatal("connection still open")
	}
}

// subscribe sends one SUBSCRIBE and returns the SUBACK reason codes; a
// PUBLISH that arrives first is kept for collectUntil.
func (rc *rawClient) subscribe(filters ...string) []byte {
	rc.t.Helper()
	rc.pid++
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: rc.pid}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	rc.send(pk)
	for {
		ack := rc.read()
		switch ack.FixedHeader.Type {
		case packets.Suback:
			return ack.ReasonCodes
		case packets.Publish:
			rc.pending = append(rc.pending, ack)
		default:
			rc.t.Fatalf("expected SUBACK, got %s", packets.PacketNames[ack.FixedHeader.Type])
		}
	}
}

// publish sends a QoS 1 PUBLISH and returns the PUBACK (v5 carries a
// reason code). A 3.1.1 client refused by the ACL is disconnected instead.
func (rc *rawClient) publish(topic string, retain bool) (packets.Packet, error) {
	rc.t.Helper()
	rc.pid++
	rc.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
		TopicName:   topic, PacketID: rc.pid, Payload: []byte("p:" + topic),
	})
	for {
		pk, err := rc.next(waitFor)
		if err != nil {
			return pk, err
		}
		if pk.FixedHeader.Type == packets.Puback && pk.PacketID == rc.pid {
			return pk, nil
		}
		if pk.FixedHeader.Type == packets.Publish {
			rc.pending = append(rc.pending, pk)
			continue
		}
		return pk, fmt.Errorf("unexpected %s", packets.PacketNames[pk.FixedHeader.Type])
	}
}

// collectUntil reads PUBLISH packets (acking QoS 1) until one on stop
// arrives, and returns the topics seen before it.
func (rc *rawClient) collectUntil(stop string) []string {
	rc.t.Helper()
	var seen []string
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		var pk packets.Packet
		if len(rc.pending) > 0 {
			pk, rc.pending = rc.pending[0], rc.pending[1:]
		} else {
			var err error
			if pk, err = rc.next(time.Until(deadline)); err != nil {
				rc.t.Fatalf("waiting for %q (seen %v): %v", stop, seen, err)
			}
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if pk.FixedHeader.Qos > 0 {
			rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
		if pk.TopicName == stop {
			return seen
		}
		seen = append(seen, pk.TopicName)
	}
	rc.t.Fatalf("no %q within %s (seen %v)", stop, waitFor, seen)
	return nil
}

// collectN reads exactly n PUBLISH packets (acking QoS 1) and returns their
// topics.
func (rc *rawClient) collectN(n int) []string {
	rc.t.Helper()
	var seen []string
	deadline := time.Now().Add(waitFor)
	for len(seen) < n {
		var pk packets.Packet
		if len(rc.pending) > 0 {
			pk, rc.pending = rc.pending[0], rc.pending[1:]
		} else {
			var err error
			if pk, err = rc.next(time.Until(deadline)); err != nil {
				rc.t.Fatalf("waiting for %d messages (seen %v): %v", n, seen, err)
			}
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if pk.FixedHeader.Qos > 0 {
			rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
		seen = append(seen, pk.TopicName)
	}
	return seen
}

// ping checks the connection is alive; PUBLISHes read meanwhile are kept.
func (rc *rawClient) ping() {
	rc.t.Helper()
	rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	for {
		pk := rc.read()
		switch pk.FixedHeader.Type {
		case packets.Pingresp:
			return
		case packets.Publish:
			rc.pending = append(rc.pending, pk)
		}
	}
}
