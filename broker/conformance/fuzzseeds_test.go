package conformance_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	mq "github.com/courier-mqtt/courier/internal/mqtttest"
)

var writeCorpus = flag.Bool("write-corpus", false, "write the FuzzConnection seeds to testdata/fuzz/FuzzConnection")

// fuzzSeeds are whole client inputs for FuzzConnection: valid sessions of
// every protocol version and the malformed packets of the conformance
// tables, so the fuzzer starts past CONNECT.
func fuzzSeeds() map[string][]byte {
	c5 := mq.Connect{Version: 5, ClientID: "f5", Clean: true, Keepalive: 30}.Encode()
	c4 := mq.Connect{Version: 4, ClientID: "f4", Clean: true, Keepalive: 30}.Encode()
	c3 := mq.Connect{Version: 3, ClientID: "f3", Clean: true, Keepalive: 30}.Encode()
	alias := func(a uint16) [][]byte { return [][]byte{mq.Short(mq.PropTopicAlias, a)} }
	return map[string][]byte{
		"v5-session": mq.Cat(c5, mq.Subscribe(5, 1, [][]byte{mq.VarInt(mq.PropSubscriptionID, 3)}, mq.Sub{Filter: "s/#", Options: 0x2E}),
			mq.Publish{Topic: "s/a", QoS: 1, PacketID: 2, Props: [][]byte{mq.Int(mq.PropMessageExpiry, 9), mq.User("k", "v")}, Payload: []byte("x")}.Encode(),
			mq.Publish{Topic: "s/b", QoS: 2, PacketID: 3, Payload: []byte("y")}.Encode(), mq.Ack(5, mq.PUBREL, 3, 0),
			mq.Unsubscribe(5, 4, nil, "s/#"), mq.Pingreq(), mq.Disconnect(5, 0x04)),
		"v4-session": mq.Cat(c4, mq.Subscribe(4, 1, nil, mq.Sub{Filter: "+/x", Options: 2}),
			mq.Publish{Version: 4, Topic: "a/x", QoS: 2, PacketID: 7, Retain: true, Payload: []byte("r")}.Encode(),
			mq.Ack(4, mq.PUBREL, 7, 0), mq.Ack(4, mq.PUBACK, 1, 0), mq.Pingreq(), mq.Disconnect(4, 0)),
		"v3-session": mq.Cat(c3, mq.Subscribe(3, 1, nil, mq.Sub{Filter: "v3", Options: 1}),
			mq.Publish{Version: 3, Topic: "v3", QoS: 1, PacketID: 1, Payload: []byte("p")}.Encode(), mq.Disconnect(3, 0)),
		"v5-will": mq.Connect{Version: 5, ClientID: "fw", Username: mq.Ptr("u"), Password: mq.Ptr("p"),
			Props: [][]byte{mq.Int(mq.PropSessionExpiry, 5), mq.Short(mq.PropReceiveMaximum, 4), mq.Int(mq.PropMaximumPacketSize, 200)},
			Will:  &mq.Will{Topic: "w", Payload: []byte("bye"), QoS: 1, Retain: true, Props: [][]byte{mq.Int(mq.PropWillDelay, 1), mq.String(mq.PropContentType, "t")}}}.Encode(),
		"v5-aliases": mq.Cat(c5, mq.Publish{Topic: "al", Props: alias(1)}.Encode(), mq.Publish{Props: alias(1)}.Encode(),
			mq.Publish{Props: alias(2)}.Encode()),
		"v5-truncated-subscribe": mq.Cat(c5, mq.Frame(0x82, mq.U16(1), []byte{0}, mq.Str("a/b"))),
		"v5-bad-utf8-topic":      mq.Cat(c5, mq.Publish{Topic: "a\xc3\x28"}.Encode()),
		"v5-qos3":                mq.Cat(c5, mq.Frame(0x36, mq.Str("a"), mq.U16(1), []byte{0})),
		"v5-five-byte-length":    mq.Cat(c5, []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}),
		"v5-ping-then-bad-flags": mq.Cat(c5, mq.Pingreq(), []byte{0xC1, 0}),
		"v5-auth":                mq.Cat(c5, mq.Frame(0xF0, []byte{0x19, 0})),
		"v5-props-past-end":      mq.Cat(c5, mq.Frame(0x30, mq.Str("a"), []byte{5, 0x01})),
		"v5-shared-nolocal":      mq.Cat(c5, mq.Subscribe(5, 1, nil, mq.Sub{Filter: "$share/g/a", Options: 0x05})),
		"v5-second-connect":      mq.Cat(c5, c5),
		"v4-password-no-user":    mq.Frame(0x10, mq.Str("MQTT"), []byte{4, 0x42}, mq.U16(30), mq.Str("p"), mq.Str("secret")),
		"v4-unsupported-level":   mq.Frame(0x10, mq.Str("MQTT"), []byte{9, 0x02}, mq.U16(30), mq.Str("l")),
		"publish-before-connect": mq.Publish{Topic: "a"}.Encode(),
		"connect-reserved-flag":  mq.Frame(0x10, mq.Str("MQTT"), []byte{5, 0x03}, mq.U16(30), []byte{0}, mq.Str("r")),
	}
}

// TestFuzzSeedsCheckedIn keeps the corpus in testdata in step with
// fuzzSeeds; run with -write-corpus to rewrite it.
func TestFuzzSeedsCheckedIn(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzConnection")
	for name, data := range fuzzSeeds() {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", data, len(data)/2)
		path := filepath.Join(dir, "seed-"+name)
		if *writeCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale: run go test -run TestFuzzSeedsCheckedIn -write-corpus ./broker/conformance/", path)
		}
	}
}
