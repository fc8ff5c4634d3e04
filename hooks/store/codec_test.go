package store

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	in := sessionRec{
		ProtocolVersion: 5, Clean: false, ExpirySet: true, Username: []byte("alice"), Listener: "tcp",
		ExpiryInterval: 3600, Disconnected: 1_700_000_000, ReceiveMaximum: 10, TopicAliasMaximum: 5,
		MaximumPacketSize: 1 << 20, RequestProblemInfo: 1, RequestProblemInfoFlag: true, RequestResponseInfo: 1,
		User: []packets.UserProperty{{Key: "k", Val: "v"}},
		Will: willRec{Flag: 1, Topic: "will/t", Payload: []byte("bye"), Qos: 1, Retain: true, Delay: 7, User: []packets.UserProperty{{Key: "a", Val: "b"}}, Due: 1_700_000_007},
	}
	out, err := decodeSession(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// A record written before the Will's due time was kept has no such
	// field: it reads as no Will pending.
	in.Will.Due = 0
	old := in.encode()
	old = old[:len(old)-1] // the zero varint of Due
	if out, err = decodeSession(old); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("record without Due: %+v, %v", out, err)
	}
}

// A session record with a Will carrying every MQTT 5 property decodes to
// the same record, and its Will to a PUBLISH with every property.
func TestSessionWillPropertiesRoundTrip(t *testing.T) {
	t.Parallel()
	in := sessionRec{
		ProtocolVersion: 5, ExpirySet: true, Listener: "tcp", ExpiryInterval: 300, Disconnected: 1_700_000_000,
		Will: willRec{
			Flag: 1, Topic: "will/t", Payload: []byte("bye"), Qos: 2, Retain: true, Delay: 30,
			User: []packets.UserProperty{{Key: "z", Val: "1"}, {Key: "a", Val: "2"}}, Due: 1_700_000_030,
			PayloadFormat: 1, PayloadFormatFlag: true, MessageExpiry: 1<<32 - 1, ContentType: "text/plain",
			ResponseTopic: "reply/t", CorrelationData: []byte{0, 1, 0xff},
		},
	}
	out, err := decodeSession(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	pk := out.Will.packet()
	want := packets.Properties{
		User: in.Will.User, PayloadFormat: 1, PayloadFormatFlag: true, MessageExpiryInterval: 1<<32 - 1,
		ContentType: "text/plain", ResponseTopic: "reply/t", CorrelationData: []byte{0, 1, 0xff},
	}
	if pk.TopicName != "will/t" || string(pk.Payload) != "bye" || pk.FixedHeader.Qos != 2 || !pk.FixedHeader.Retain ||
		!reflect.DeepEqual(pk.Properties, want) {
		t.Fatalf("Will packet %+v, want every property", pk)
	}
	// One property alone is kept too (the set is written when any is).
	for _, w := range []willRec{
		{Flag: 1, Topic: "t", PayloadFormatFlag: true},
		{Flag: 1, Topic: "t", MessageExpiry: 5},
		{Flag: 1, Topic: "t", CorrelationData: []byte{0}},
	} {
		r := sessionRec{ProtocolVersion: 5, Will: w}
		if out, err := decodeSession(r.encode()); err != nil || !reflect.DeepEqual(r, out) {
			t.Fatalf("Will %+v: got %+v, %v", w, out.Will, err)
		}
	}
}

// A session record in the layout written before the Will properties were
// kept (bytes built by hand) still decodes: its Will reads as one without
// them. And a record whose Will has none is written in that same layout.
func TestSessionDecodesLayoutWithoutWillProperties(t *testing.T) {
	t.Parallel()
	old := []byte{
		valueVersion, kindSession,
		5,                          // protocol version
		0b1010,                     // flags: clean 0, expiry set 1, problem info flag 0, will retain 1
		5, 'a', 'l', 'i', 'c', 'e', // username
		3, 't', 'c', 'p', // listener
		0xac, 0x02, // session expiry 300
		0x80, 0x80, 0x80, 0x80, 0x0c, // disconnected: zigzag(1_610_612_736)
		10,               // receive maximum
		5,                // topic alias maximum
		0x80, 0x80, 0x40, // maximum packet size 1 << 20
		1,                 // request problem info
		0,                 // request response info
		1, 1, 'k', 1, 'v', // user properties: k=v
		1,                               // will flag
		6, 'w', 'i', 'l', 'l', '/', 't', // will topic
		3, 'b', 'y', 'e', // will payload
		1,                 // will qos
		30,                // will delay
		1, 1, 'a', 1, 'b', // will user properties: a=b
		0x3c, // due: zigzag(30)
	}
	want := sessionRec{
		ProtocolVersion: 5, ExpirySet: true, Username: []byte("alice"), Listener: "tcp", ExpiryInterval: 300,
		Disconnected: 1 << 29 * 3, ReceiveMaximum: 10, TopicAliasMaximum: 5, MaximumPacketSize: 1 << 20,
		RequestProblemInfo: 1, User: []packets.UserProperty{{Key: "k", Val: "v"}},
		Will: willRec{Flag: 1, Topic: "will/t", Payload: []byte("bye"), Qos: 1, Retain: true, Delay: 30,
			User: []packets.UserProperty{{Key: "a", Val: "b"}}, Due: 30},
	}
	got, err := decodeSession(old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("old layout:\n got %+v\nwant %+v", got, want)
	}
	if enc := want.encode(); !bytes.Equal(enc, old) {
		t.Fatalf("a Will without properties is no longer written in the old layout:\n got %x\nwant %x", enc, old)
	}
	// A truncated property set is corrupt, not a Will without properties.
	withProps := want
	withProps.Will.ContentType = "text/plain"
	b := withProps.encode()
	if _, err := decodeSession(b[:len(b)-2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated Will properties: err = %v, want ErrCorrupt", err)
	}
}

func TestSubRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []subRec{
		{Qos: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, Identifier: 268435455},
		{},
	} {
		out, err := decodeSub(in.encode())
		if err != nil {
			t.Fatal(err)
		}
		if in != out {
			t.Fatalf("got %+v want %+v", out, in)
		}
	}
}

func TestMsgRoundTrip(t *testing.T) {
	t.Parallel()
	in := msgRec{
		Stage: stagePublish, Qos: 2, Retain: true, Dup: true, PacketID: 65535, ProtocolVersion: 5,
		Created: 1_700_000_000, Expiry: 1_700_000_060, Origin: "pub", Topic: "a/b", Payload: []byte{0, 1, 2},
		PayloadFormat: 1, PayloadFormatFlag: true, MessageExpiry: 60, ContentType: "text/plain",
		ResponseTopic: "resp", CorrelationData: []byte("corr"),
		User:            []packets.UserProperty{{Key: "x", Val: "1"}, {Key: "x", Val: "2"}},
		SubscriptionIDs: []int{1, 268435455},
	}
	for _, kind := range []byte{kindOutbound, kindRetained, kindInbound} {
		out, err := decodeMsg(kind, in.encode(kind))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("kind %q:\n got %+v\nwant %+v", kind, out, in)
		}
	}
	// The packet conversion keeps every property.
	pk := in.packet()
	back := msgFromPacket(stagePublish, pk)
	if !reflect.DeepEqual(in, back) {
		t.Fatalf("packet round trip:\n got %+v\nwant %+v", back, in)
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	t.Parallel()
	good := (&msgRec{Stage: stagePublish, Qos: 1, Topic: "a", Payload: []byte("p")}).encode(kindOutbound)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{valueVersion}},
		{"future version", append([]byte{valueVersion + 1}, good[1:]...)},
		{"wrong kind", append([]byte{valueVersion, kindRetained}, good[2:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"garbage", []byte{valueVersion, kindOutbound, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"bad qos", func() []byte { b := append([]byte{}, good...); b[3] = 7; return b }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeMsg(kindOutbound, tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := decodeSession([]byte("not a record")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("session err = %v", err)
	}
	if _, err := decodeSub([]byte{valueVersion, kindSub, 9, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("sub err = %v", err)
	}
}

func FuzzDecodeMsg(f *testing.F) {
	f.Add((&msgRec{Stage: stagePublish, Qos: 1, Topic: "a", Payload: []byte("p"), User: []packets.UserProperty{{Key: "k", Val: "v"}}}).encode(kindOutbound))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeMsg(kindOutbound, b) // must never panic
		if err == nil {
			again, err := decodeMsg(kindOutbound, r.encode(kindOutbound))
			if err != nil || !reflect.DeepEqual(r, again) {
				t.Fatalf("re-encode mismatch: %v", err)
			}
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	f.Add((&sessionRec{ProtocolVersion: 5, Will: willRec{Flag: 1, Topic: "w", Due: 9}}).encode())
	f.Add((&sessionRec{ProtocolVersion: 5, Will: willRec{Flag: 1, Topic: "w", Due: 9, ContentType: "c", CorrelationData: []byte{1}}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSession(b) // must never panic
		if err == nil {
			again, err := decodeSession(r.encode())
			if err != nil || !reflect.DeepEqual(r, again) {
				t.Fatalf("re-encode mismatch: %v", err)
			}
		}
	})
}

func TestKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	ids := []string{"", "a", "ab", "a:b", "a\x00", "\x01a", strings.Repeat("x", 127), strings.Repeat("x", 128), "SUB_", "ü"}
	filters := []string{"", "b", ":b", "a/#", "\x00"}
	seen := map[string]string{}
	add := func(k []byte, what string) {
		if prev, ok := seen[string(k)]; ok {
			t.Fatalf("key collision: %s and %s", prev, what)
		}
		seen[string(k)] = what
	}
	for _, id := range ids {
		add(sessionKey(id), "session "+id)
		for _, f := range filters {
			add(subKey(id, f), "sub "+id+" "+f)
		}
		for _, s := range []uint64{0, 1, 1 << 40} {
			add(outboundKey(id, s), "out "+id)
		}
		add(inboundKey(id, 7), "in "+id)
	}
	for _, tp := range filters {
		add(retainedKey(tp), "ret "+tp)
	}
	// A client's prefix never covers another client's keys.
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			if strings.HasPrefix(string(subKey(b, "f")), string(clientPrefix(kindSub, a))) {
				t.Fatalf("prefix of %q covers %q", a, b)
			}
		}
	}
}

func FuzzKeys(f *testing.F) {
	f.Add("a", "b", "a:b", "", uint64(1))
	f.Fuzz(func(t *testing.T, c1, f1, c2, f2 string, seq uint64) {
		if c1 != c2 || f1 != f2 {
			if string(subKey(c1, f1)) == string(subKey(c2, f2)) {
				t.Fatalf("sub keys collide: %q/%q %q/%q", c1, f1, c2, f2)
			}
		}
		if c1 != c2 && strings.HasPrefix(string(outboundKey(c2, seq)), string(clientPrefix(kindOutbound, c1))) {
			t.Fatalf("client prefix %q covers %q", c1, c2)
		}
		p, err := parseKey(subKey(c1, f1))
		if err != nil || p.client != c1 || p.rest != f1 {
			t.Fatalf("parse sub key: %+v %v", p, err)
		}
		p, err = parseKey(outboundKey(c1, seq))
		if err != nil || p.client != c1 || p.seq != seq {
			t.Fatalf("parse outbound key: %+v %v", p, err)
		}
	})
}
